package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
)

// The shapes of single values: names, ARNs, host:port. Validate and discovery apply them.

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

// checkDNSName accepts a host name (letters, digits, '-', '_'; labels of 1-63 characters; 253 in all), with or
// without the final dot. IP addresses are refused: there would be nothing to follow.
func checkDNSName(name string) error {
	if _, err := netip.ParseAddr(name); err == nil {
		return fmt.Errorf("is an IP address; ipsync follows a DNS name (register a fixed address in the target group directly)")
	}
	switch {
	case strings.Contains(name, "://"):
		return fmt.Errorf("looks like a URL, not a DNS name")
	case strings.ContainsAny(name, ":/"):
		return fmt.Errorf("is not a bare DNS name (no scheme, port or path; the port goes in port:)")
	}
	trimmed := strings.TrimSuffix(name, ".")
	if len(trimmed) == 0 || len(trimmed) > 253 {
		return fmt.Errorf("is %d characters long; a DNS name has 1-253", len(trimmed))
	}
	for _, label := range strings.Split(trimmed, ".") {
		if err := checkLabel(label); err != nil {
			return err
		}
	}
	return nil
}

// checkLabel checks one dot-separated label of a DNS name.
func checkLabel(label string) error {
	if len(label) == 0 || len(label) > 63 {
		return fmt.Errorf("has a label of %d characters; each dot-separated label has 1-63", len(label))
	}
	if label[0] == '-' || label[len(label)-1] == '-' {
		return fmt.Errorf("label %q starts or ends with '-'", label)
	}
	for _, r := range label {
		if !isHostRune(r) {
			return fmt.Errorf("has %q, which is not allowed in a DNS name (letters, digits, '-', '_', '.')", r)
		}
	}
	return nil
}

// isHostRune reports whether r may stand in a DNS label ipsync follows: letters, digits, '-' and '_' (RDS and
// service-discovery names use the underscore).
func isHostRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
}

// checkTargetGroupARN checks the shape of an ELBv2 target group ARN; the region ipsync calls comes from it.
func checkTargetGroupARN(s string) error {
	a, err := parseARN(s)
	if err != nil {
		return err
	}
	if a.Service != "elasticloadbalancing" {
		return fmt.Errorf("service is %q, not elasticloadbalancing", a.Service)
	}
	if a.Region == "" || !isLowerDash(a.Region) {
		return fmt.Errorf("region %q is not a region such as us-east-1", a.Region)
	}
	if err := checkAccount(a.AccountID); err != nil {
		return err
	}
	parts := strings.Split(a.Resource, "/")
	if parts[0] == "loadbalancer" {
		return fmt.Errorf("is a load balancer ARN; give the ARN of its target group")
	}
	if len(parts) != 3 || parts[0] != "targetgroup" {
		return fmt.Errorf("resource %q is not targetgroup/NAME/ID", a.Resource)
	}
	name, id := parts[1], parts[2]
	if len(name) == 0 || len(name) > 32 || name[0] == '-' || name[len(name)-1] == '-' || !isAlnumDash(name) {
		return fmt.Errorf("target group name %q is not 1-32 letters, digits and inner '-'", name)
	}
	if id == "" || !isAlnumDash(id) || strings.Contains(id, "-") {
		return fmt.Errorf("target group ID %q is not alphanumeric", id)
	}
	return nil
}

// checkRoleARN checks the shape of an IAM role ARN (paths allowed: role/path/NAME).
func checkRoleARN(s string) error {
	a, err := parseARN(s)
	if err != nil {
		return err
	}
	if a.Service == "sts" && strings.HasPrefix(a.Resource, "assumed-role/") {
		return fmt.Errorf("is an STS session ARN; give the IAM role's ARN")
	}
	if a.Service != "iam" {
		return fmt.Errorf("service is %q, not iam", a.Service)
	}
	if a.Region != "" {
		return fmt.Errorf("has region %q; IAM ARNs have none", a.Region)
	}
	if err := checkAccount(a.AccountID); err != nil {
		return err
	}
	name, ok := strings.CutPrefix(a.Resource, "role/")
	if !ok || name == "" || strings.HasSuffix(name, "/") || strings.ContainsAny(name, " \t\r\n") {
		return fmt.Errorf("resource %q is not role/NAME", a.Resource)
	}
	return nil
}

func parseARN(s string) (arn.ARN, error) {
	a, err := arn.Parse(s)
	if err != nil {
		return arn.ARN{}, fmt.Errorf("is not an ARN (%w)", err)
	}
	if a.Partition == "" || !isLowerDash(a.Partition) {
		return arn.ARN{}, fmt.Errorf("partition %q is not one such as aws, aws-cn or aws-us-gov", a.Partition)
	}
	return a, nil
}

func checkAccount(id string) error {
	if len(id) != 12 || strings.Trim(id, "0123456789") != "" {
		return fmt.Errorf("account ID %q is not 12 digits", id)
	}
	return nil
}

func isLowerDash(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

func isAlnumDash(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// checkHostPort accepts host:port with an IP address, a DNS name or (for listening) an empty host, and a
// numeric port from minPort to 65535.
func checkHostPort(s string, minPort int) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("not host:port")
	}
	if host == "" {
		if minPort > 0 {
			return fmt.Errorf("no host")
		}
	} else if _, err := netip.ParseAddr(host); err != nil {
		if checkDNSName(host) != nil {
			return fmt.Errorf("host %q is neither an IP address nor a DNS name", host)
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < minPort || n > 65535 {
		return fmt.Errorf("port %q is not a number %d-65535", port, minPort)
	}
	return nil
}
