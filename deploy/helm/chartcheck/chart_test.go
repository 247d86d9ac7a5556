package chartcheck

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const (
	chartDir   = "../ipsync"
	fullValues = chartDir + "/ci/full-values.yaml"
	// The sources the chart carries copies of (Helm reads no file outside the chart).
	alertsSource    = "../../prometheus/alerts.yml"
	dashboardSource = "../../grafana/ipsync.json"
	metricsPort     = 9796
	nonRootUID      = 65532 // distroless's nonroot, the image's USER
)

// rendered is the objects of one helm template run, by kind.
type rendered struct {
	serviceAccounts []*corev1.ServiceAccount
	configMaps      []*corev1.ConfigMap
	services        []*corev1.Service
	deployments     []*appsv1.Deployment
	serviceMonitors []*monitoringv1.ServiceMonitor
	rules           []*monitoringv1.PrometheusRule
}

func (r *rendered) kinds() []string {
	var ks []string
	for k, n := range map[string]int{
		"ServiceAccount": len(r.serviceAccounts), "ConfigMap": len(r.configMaps), "Service": len(r.services),
		"Deployment": len(r.deployments), "ServiceMonitor": len(r.serviceMonitors), "PrometheusRule": len(r.rules),
	} {
		for range n {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	return ks
}

// strict decodes JSON into v, failing on a field v's type does not have.
func strict(doc []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// helmTemplate renders the chart with the arguments and decodes every object strictly into its API type.
func helmTemplate(t *testing.T, args ...string) *rendered {
	t.Helper()
	helm, err := exec.LookPath("helm")
	if err != nil {
		if os.Getenv("IPSYNC_REQUIRE_TOOLS") == "1" {
			t.Fatalf("helm is not on PATH (go install helm.sh/helm/v3/cmd/helm@v3.22.0)")
		}
		t.Skip("helm is not on PATH (go install helm.sh/helm/v3/cmd/helm@v3.22.0); set IPSYNC_REQUIRE_TOOLS=1 to make this a failure")
	}
	cmd := exec.Command(helm, append([]string{"template", "ipsync", chartDir, "--namespace", "databases"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	r := &rendered{}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatalf("helm template %s: %v\n%s", strings.Join(args, " "), err, doc)
		}
		if string(js) == "null" {
			continue // an empty document (a template rendering nothing)
		}
		var head struct{ APIVersion, Kind string }
		if err := json.Unmarshal(js, &head); err != nil {
			t.Fatal(err)
		}
		var obj any
		switch head.APIVersion + " " + head.Kind {
		case "v1 ServiceAccount":
			obj = appendNew(&r.serviceAccounts)
		case "v1 ConfigMap":
			obj = appendNew(&r.configMaps)
		case "v1 Service":
			obj = appendNew(&r.services)
		case "apps/v1 Deployment":
			obj = appendNew(&r.deployments)
		case "monitoring.coreos.com/v1 ServiceMonitor":
			obj = appendNew(&r.serviceMonitors)
		case "monitoring.coreos.com/v1 PrometheusRule":
			obj = appendNew(&r.rules)
		default:
			t.Fatalf("the chart renders a %s %s, which this test does not know", head.APIVersion, head.Kind)
		}
		if err := strict(js, obj); err != nil {
			t.Errorf("%s %s does not decode into its API type: %v\n%s", head.APIVersion, head.Kind, err, doc)
		}
	}
	return r
}

func appendNew[T any](list *[]*T) *T {
	v := new(T)
	*list = append(*list, v)
	return v
}

func TestDefaultValues(t *testing.T) {
	r := helmTemplate(t)
	if got, want := r.kinds(), []string{"Deployment", "Service", "ServiceAccount"}; !slices.Equal(got, want) {
		t.Fatalf("default values render %q, want %q", got, want)
	}
	d := checkDeployment(t, r)
	c := d.Spec.Template.Spec.Containers[0]
	env := envOf(c)
	if _, ok := env["IPSYNC_ENDPOINT"]; !ok || len(c.VolumeMounts) != 0 {
		t.Errorf("default values: want one mapping from IPSYNC_ENDPOINT and no configuration volume, got env %v, mounts %v", env, c.VolumeMounts)
	}
}

func TestFullValues(t *testing.T) {
	r := helmTemplate(t, "--values", fullValues)
	want := []string{"ConfigMap", "ConfigMap", "Deployment", "PrometheusRule", "Service", "ServiceAccount", "ServiceMonitor"}
	if got := r.kinds(); !slices.Equal(got, want) {
		t.Fatalf("full values render %q, want %q", got, want)
	}
	d := checkDeployment(t, r)
	pod := d.Spec.Template.Spec

	// IRSA: the role on the service account the pod runs as.
	sa := r.serviceAccounts[0]
	if sa.Name != pod.ServiceAccountName || sa.Annotations["eks.amazonaws.com/role-arn"] != "arn:aws:iam::123456789012:role/ipsync" {
		t.Errorf("service account %s (annotations %v); the pod runs as %s with the IRSA role of serviceAccount.roleArn", sa.Name, sa.Annotations, pod.ServiceAccountName)
	}

	// The configuration: values' config in a ConfigMap, mounted where IPSYNC_CONFIG points.
	var values struct {
		Config map[string]any `json:"config"`
	}
	b, err := os.ReadFile(fullValues)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatal(err)
	}
	cm := configMapWithKey(t, r, "ipsync.yaml")
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["ipsync.yaml"]), &cfg); err != nil || !reflect.DeepEqual(cfg, values.Config) {
		t.Errorf("ConfigMap %s ipsync.yaml = %v (%v), want values' config %v", cm.Name, cfg, err, values.Config)
	}
	checkConfigVolume(t, d, func(v corev1.Volume) bool { return v.ConfigMap != nil && v.ConfigMap.Name == cm.Name })

	// Prometheus Operator: job="ipsync" from the Service's label, the alerts as in deploy/prometheus/alerts.yml.
	sm, svc := r.serviceMonitors[0], r.services[0]
	if job := svc.Labels[sm.Spec.JobLabel]; job != "ipsync" {
		t.Errorf("ServiceMonitor jobLabel %q gives job=%q; the alerts and the dashboard select job=\"ipsync\"", sm.Spec.JobLabel, job)
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "metrics" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %+v, want the metrics port's /metrics", sm.Spec.Endpoints)
	}
	for k, v := range sm.Spec.Selector.MatchLabels {
		if svc.Labels[k] != v {
			t.Errorf("ServiceMonitor selects %s=%s; the Service has %s=%s", k, v, k, svc.Labels[k])
		}
	}
	var alerts monitoringv1.PrometheusRuleSpec
	b, err = os.ReadFile(alertsSource)
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := strict(js, &alerts); err != nil {
		t.Fatalf("%s does not decode into a PrometheusRule's spec: %v", alertsSource, err)
	}
	if !reflect.DeepEqual(r.rules[0].Spec, alerts) {
		t.Errorf("the PrometheusRule's groups differ from %s", alertsSource)
	}

	// Grafana: the dashboard, labelled for the sidecar.
	dash := configMapWithKey(t, r, "ipsync.json")
	src, err := os.ReadFile(dashboardSource)
	if err != nil {
		t.Fatal(err)
	}
	if dash.Labels["grafana_dashboard"] != "1" || dash.Data["ipsync.json"] != strings.TrimRight(string(src), "\n") {
		t.Errorf("dashboard ConfigMap %s: label grafana_dashboard=%q, and its ipsync.json must be %s", dash.Name, dash.Labels["grafana_dashboard"], dashboardSource)
	}
}

func TestExistingSecret(t *testing.T) {
	r := helmTemplate(t, "--set", "existingSecret=ipsync-config", "--set", "existingSecretKey=config.yaml")
	if len(r.configMaps) != 0 {
		t.Errorf("with existingSecret the chart renders a ConfigMap")
	}
	d := checkDeployment(t, r)
	checkConfigVolume(t, d, func(v corev1.Volume) bool {
		return v.Secret != nil && v.Secret.SecretName == "ipsync-config" &&
			reflect.DeepEqual(v.Secret.Items, []corev1.KeyToPath{{Key: "config.yaml", Path: "ipsync.yaml"}})
	})
}

// TestChartFilesAreCopiesOfTheSources: Helm reads only files inside the chart, so the chart carries copies of
// the alerts and the dashboard; they must stay byte for byte the files Prometheus and Grafana users load.
func TestChartFilesAreCopiesOfTheSources(t *testing.T) {
	for src, cp := range map[string]string{alertsSource: chartDir + "/files/alerts.yml", dashboardSource: chartDir + "/files/ipsync.json"} {
		a, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(cp)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s: cp %s %s", cp, src, filepath.Clean(filepath.Join("deploy/helm/chartcheck", src)), filepath.Clean(filepath.Join("deploy/helm/chartcheck", cp)))
		}
	}
}

func envOf(c corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	return env
}

func configMapWithKey(t *testing.T, r *rendered, key string) *corev1.ConfigMap {
	t.Helper()
	for _, cm := range r.configMaps {
		if _, ok := cm.Data[key]; ok {
			return cm
		}
	}
	t.Fatalf("no ConfigMap has %s", key)
	return nil
}

// checkConfigVolume: IPSYNC_CONFIG names ipsync.yaml in a read-only mount of the volume that matches.
func checkConfigVolume(t *testing.T, d *appsv1.Deployment, match func(corev1.Volume) bool) {
	t.Helper()
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	for _, v := range pod.Volumes {
		if !match(v) {
			continue
		}
		for _, m := range c.VolumeMounts {
			if m.Name == v.Name && m.ReadOnly && envOf(c)["IPSYNC_CONFIG"] == filepath.Join(m.MountPath, "ipsync.yaml") {
				return
			}
		}
	}
	t.Errorf("IPSYNC_CONFIG=%q is not ipsync.yaml of a read-only mount of the configuration volume (volumes %+v, mounts %+v)",
		envOf(c)["IPSYNC_CONFIG"], pod.Volumes, c.VolumeMounts)
}

// checkDeployment holds the Deployment to what the daemon needs, whatever the values.
func checkDeployment(t *testing.T, r *rendered) *appsv1.Deployment {
	t.Helper()
	if len(r.deployments) != 1 || len(r.services) != 1 {
		t.Fatalf("want one Deployment and one Service, got %d and %d", len(r.deployments), len(r.services))
	}
	d := r.deployments[0]
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("Deployment %s: replicas %s, strategy %s; want exactly 1, Recreate (never two daemons at once)",
			d.Name, fmt.Sprint(ptrValue(d.Spec.Replicas)), d.Spec.Strategy.Type)
	}
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	if !slices.Equal(c.Args, []string{"run"}) || len(c.Command) != 0 {
		t.Errorf("container runs %q %q; want the image's entrypoint with [run]", c.Command, c.Args)
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != metricsPort || c.Ports[0].Name != "metrics" || envOf(c)["IPSYNC_LISTEN"] != fmt.Sprintf(":%d", metricsPort) {
		t.Errorf("container ports %+v, IPSYNC_LISTEN %q; want metrics on %d", c.Ports, envOf(c)["IPSYNC_LISTEN"], metricsPort)
	}
	for name, p := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != name || p.HTTPGet.Port.String() != "metrics" {
			t.Errorf("probe on %s: %+v", name, p)
		}
	}
	sc, psc := c.SecurityContext, pod.SecurityContext
	if sc == nil || psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != nonRootUID ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("security context: pod %+v, container %+v; want non-root %d, read-only root, no privilege escalation, capabilities drop ALL, seccomp RuntimeDefault",
			psc, sc, nonRootUID)
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("container resources %+v: want memory requests and limits", c.Resources)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("the pod mounts a Kubernetes API token it never uses")
	}
	svc := r.services[0]
	for k, v := range svc.Spec.Selector {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("Service %s selects %s=%s, which the pod does not have", svc.Name, k, v)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "metrics" || svc.Spec.Ports[0].TargetPort.String() != "metrics" {
		t.Errorf("Service ports %+v, want metrics", svc.Spec.Ports)
	}
	return d
}

func ptrValue[T any](p *T) any {
	if p == nil {
		return "unset"
	}
	return *p
}
