package elbv2fake

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
)

type xmlCredentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string
	SessionToken    string
	Expiration      string
}

type xmlAssumedRoleUser struct {
	AssumedRoleID string `xml:"AssumedRoleId"`
	Arn           string
}

type assumeRoleResult struct {
	Credentials     xmlCredentials
	AssumedRoleUser xmlAssumedRoleUser
}

// assumeRole hands out dummy credentials; the RoleArn stays in the call log for tests to check.
func (s *Server) assumeRole(form url.Values) response {
	roleARN, session := form.Get("RoleArn"), form.Get("RoleSessionName")
	a, err := arn.Parse(roleARN)
	roleName, isRole := strings.CutPrefix(a.Resource, "role/")
	if err != nil || a.Service != "iam" || !isRole || roleName == "" {
		return failure(validationError("RoleArn '%s' is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)", roleARN))
	}
	if len(session) < 2 || len(session) > 64 {
		return failure(validationError("RoleSessionName '%s' must have 2-64 characters", session))
	}
	dur := time.Hour
	if d := form.Get("DurationSeconds"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 900 || n > 43200 {
			return failure(validationError("DurationSeconds '%s' is outside 900-43200", d))
		}
		dur = time.Duration(n) * time.Second
	}
	s.mu.Lock()
	id := s.nextID()
	s.mu.Unlock()
	roleName = roleName[strings.LastIndex(roleName, "/")+1:] // role paths: role/path/name
	return success(assumeRoleResult{
		Credentials: xmlCredentials{
			AccessKeyID:     fmt.Sprintf("ASIAFAKE%012d", id),
			SecretAccessKey: fmt.Sprintf("fake-secret-%d", id),
			SessionToken:    fmt.Sprintf("fake-session-token-%d", id),
			// Wall clock, not Options.Now: the SDK's credential cache compares it with time.Now.
			Expiration: time.Now().UTC().Add(dur).Format(time.RFC3339),
		},
		AssumedRoleUser: xmlAssumedRoleUser{
			AssumedRoleID: fmt.Sprintf("AROAFAKE%012d:%s", id, session),
			Arn:           fmt.Sprintf("arn:%s:sts::%s:assumed-role/%s/%s", a.Partition, a.AccountID, roleName, session),
		},
	})
}
