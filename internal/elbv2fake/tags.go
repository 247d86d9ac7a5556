package elbv2fake

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// AWS's limits on ELBv2 tags.
const (
	maxTagsPerResource = 50
	maxTagKeyLen       = 128
	maxTagValueLen     = 256
	maxTagResources    = 20 // ResourceArns per AddTags, RemoveTags, DescribeTags
)

// Tags returns a copy of the target group's tags; nil for an unknown ARN.
func (s *Server) Tags(arn string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.group(arn)
	if g == nil {
		return nil
	}
	return maps.Clone(g.tags)
}

// SetTags replaces the target group's tags, e.g. to stage a group as another team's Terraform left it. No
// limits are checked.
func (s *Server) SetTags(arn string, tags map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.group(arn)
	if g == nil {
		return fmt.Errorf("elbv2fake: SetTags: no target group %q; create it first", arn)
	}
	g.tags = maps.Clone(tags)
	return nil
}

// parseTags reads Tags.member.N.{Key,Value} and checks them as AWS does.
func parseTags(form url.Values) (map[string]string, *apiError) {
	ms := indexed(form, "Tags.member")
	tags := make(map[string]string, len(ms))
	for _, m := range ms {
		k, v := m["Key"], m["Value"]
		if err := checkTag(k, v); err != nil {
			return nil, err
		}
		if _, dup := tags[k]; dup {
			return nil, errorf(http.StatusBadRequest, "DuplicateTagKeys", "A tag key was specified more than once: %s", k)
		}
		tags[k] = v
	}
	return tags, nil
}

func checkTag(k, v string) *apiError {
	switch {
	case k == "" || utf8.RuneCountInString(k) > maxTagKeyLen:
		return validationError("Tag key '%s' must have 1-%d characters", k, maxTagKeyLen)
	case strings.HasPrefix(strings.ToLower(k), "aws:"):
		return validationError("Tag key '%s' cannot start with 'aws:', which is reserved for AWS use", k)
	case utf8.RuneCountInString(v) > maxTagValueLen:
		return validationError("The value of tag '%s' must have at most %d characters", k, maxTagValueLen)
	}
	return nil
}

// resources resolves ResourceArns to target groups. Called with s.mu held.
func (s *Server) resources(form url.Values) ([]*group, *apiError) {
	arns := members(form, "ResourceArns")
	if len(arns) == 0 {
		return nil, validationError("ResourceArns is required")
	}
	if len(arns) > maxTagResources {
		return nil, validationError("You can specify up to %d resources in a single call, not %d", maxTagResources, len(arns))
	}
	out := make([]*group, 0, len(arns))
	for _, a := range arns {
		if strings.Contains(a, ":loadbalancer/") {
			return nil, errorf(http.StatusBadRequest, "LoadBalancerNotFound",
				"Load balancer '%s' not found (this fake has no load balancers)", a)
		}
		g := s.group(a)
		if g == nil {
			return nil, notFound(a)
		}
		out = append(out, g)
	}
	return out, nil
}

type xmlTag struct {
	Key   string
	Value string
}

type xmlTagDescription struct {
	ResourceArn string
	Tags        []xmlTag `xml:"Tags>member"`
}

type describeTagsResult struct {
	TagDescriptions []xmlTagDescription `xml:"TagDescriptions>member"`
}

// tagAction serves AddTags, RemoveTags and DescribeTags. Like AWS, it checks the whole request before it
// changes anything.
func (s *Server) tagAction(action string, form url.Values) response {
	var add map[string]string
	var remove []string
	switch action {
	case "AddTags":
		var err *apiError
		if add, err = parseTags(form); err != nil {
			return failure(err)
		}
		if len(add) == 0 {
			return failure(validationError("Tags is required"))
		}
	case "RemoveTags":
		if remove = members(form, "TagKeys"); len(remove) == 0 {
			return failure(validationError("TagKeys is required"))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	groups, err := s.resources(form)
	if err != nil {
		return failure(err)
	}
	switch action {
	case "AddTags":
		for _, g := range groups {
			n := len(g.tags)
			for k := range add {
				if _, ok := g.tags[k]; !ok {
					n++
				}
			}
			if n > maxTagsPerResource {
				return failure(errorf(http.StatusBadRequest, "TooManyTags",
					"You've reached the limit on the number of tags for this resource (%d): %s", maxTagsPerResource, g.arn))
			}
		}
		for _, g := range groups {
			if g.tags == nil {
				g.tags = map[string]string{}
			}
			maps.Copy(g.tags, add)
		}
	case "RemoveTags":
		for _, g := range groups {
			for _, k := range remove {
				delete(g.tags, k)
			}
		}
	case "DescribeTags":
		var res describeTagsResult
		for _, g := range groups {
			d := xmlTagDescription{ResourceArn: g.arn}
			for _, k := range slices.Sorted(maps.Keys(g.tags)) {
				d.Tags = append(d.Tags, xmlTag{Key: k, Value: g.tags[k]})
			}
			res.TagDescriptions = append(res.TagDescriptions, d)
		}
		return success(res)
	}
	return success(nil)
}
