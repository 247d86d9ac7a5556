package elbv2fake

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// The Resource Groups Tagging API's GetResources, over its JSON 1.1 protocol (POST, X-Amz-Target
// ResourceGroupsTaggingAPI_20170126.GetResources), for the target groups of this fake. It lists the groups of the
// region the call was signed for, as the regional API does.

// jsonForm turns a JSON-protocol request into the form the rest of the server reads: Action and Version from
// X-Amz-Target, the request body as "Body", and the signed region as "Region" (the tagging API is regional).
// Call.Params shows the same.
func jsonForm(r *http.Request, target string) (url.Values, error) {
	version, action, _ := strings.Cut(target, ".")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	region, _ := credentialScope(r.Header.Get("Authorization"))
	return url.Values{"Action": {action}, "Version": {version}, "Body": {string(body)}, "Region": {region}}, nil
}

// writeJSONError answers e in the JSON 1.1 error shape the SDK reads: the code in X-Amzn-ErrorType and __type.
func writeJSONError(w http.ResponseWriter, e *apiError) {
	code := e.code
	if code == "ValidationError" { // the tagging API's name for it
		code = "InvalidParameterException"
	}
	b, _ := json.Marshal(map[string]string{"__type": code, "message": e.msg}) // strings only: cannot fail
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(e.status)
	_, _ = w.Write(b)
}

type getResourcesInput struct {
	PaginationToken     string
	ResourcesPerPage    *int
	TagFilters          []jsonTagFilter
	ResourceTypeFilters []string
	ResourceARNList     []string
}

type jsonTagFilter struct {
	Key    string
	Values []string
}

type jsonTag struct {
	Key   string
	Value string
}

type jsonResourceTagMapping struct {
	ResourceARN string
	Tags        []jsonTag
}

type getResourcesOutput struct {
	PaginationToken        string
	ResourceTagMappingList []jsonResourceTagMapping
}

// defaultResourcesPerPage is the page size when the caller sets none.
const defaultResourcesPerPage = 50

func (s *Server) getResources(form url.Values) response {
	var in getResourcesInput
	if err := json.Unmarshal([]byte(form.Get("Body")), &in); err != nil {
		return failure(validationError("The request body is not a JSON object: %v", err))
	}
	perPage := defaultResourcesPerPage
	if in.ResourcesPerPage != nil {
		perPage = *in.ResourcesPerPage
		if perPage < 1 || perPage > 100 {
			return failure(validationError("ResourcesPerPage %d is outside 1-100", perPage))
		}
	}
	if len(in.ResourceARNList) > 0 {
		return failure(validationError("ResourceARNList is not served by this fake; filter by TagFilters"))
	}
	if len(in.TagFilters) > 50 {
		return failure(validationError("TagFilters has %d filters; at most 50 are allowed", len(in.TagFilters)))
	}
	for _, f := range in.TagFilters {
		if f.Key == "" {
			return failure(validationError("Every TagFilters entry needs a Key"))
		}
	}
	ours := len(in.ResourceTypeFilters) == 0
	for _, t := range in.ResourceTypeFilters {
		svc, typ, _ := strings.Cut(t, ":")
		if svc == "" || strings.Contains(typ, ":") {
			return failure(validationError("ResourceTypeFilters entry %q is not service[:resourceType]", t))
		}
		ours = ours || svc == "elasticloadbalancing" && (typ == "" || typ == "targetgroup")
	}
	offset := 0
	if in.PaginationToken != "" {
		n, err := strconv.Atoi(in.PaginationToken)
		if err != nil || n < 0 {
			return failure(validationError("PaginationToken %q is not valid; pass the previous page's PaginationToken", in.PaginationToken))
		}
		offset = n
	}
	region := form.Get("Region")

	s.mu.Lock()
	defer s.mu.Unlock()
	var match []jsonResourceTagMapping
	for _, g := range s.groups {
		if !ours || len(g.tags) == 0 || region != "" && !strings.HasPrefix(g.arn, fmt.Sprintf("arn:aws:elasticloadbalancing:%s:", region)) {
			continue
		}
		if !matchesAll(g.tags, in.TagFilters) {
			continue
		}
		m := jsonResourceTagMapping{ResourceARN: g.arn, Tags: []jsonTag{}}
		for _, k := range slices.Sorted(maps.Keys(g.tags)) {
			m.Tags = append(m.Tags, jsonTag{Key: k, Value: g.tags[k]})
		}
		match = append(match, m)
	}
	out := getResourcesOutput{ResourceTagMappingList: []jsonResourceTagMapping{}}
	if offset < len(match) {
		out.ResourceTagMappingList = match[offset:min(offset+perPage, len(match))]
	}
	if offset+perPage < len(match) {
		out.PaginationToken = strconv.Itoa(offset + perPage)
	}
	return success(out)
}

// matchesAll applies TagFilters: every filter's key present, with one of its values if it lists any.
func matchesAll(tags map[string]string, filters []jsonTagFilter) bool {
	for _, f := range filters {
		v, ok := tags[f.Key]
		if !ok || len(f.Values) > 0 && !slices.Contains(f.Values, v) {
			return false
		}
	}
	return true
}
