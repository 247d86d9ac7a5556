package elbv2fake

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// API versions, sent by the SDK in the Version form field; they select the service.
const (
	elbVersion = "2015-12-01"
	ec2Version = "2016-11-15"
	stsVersion = "2011-06-15"
	rdsVersion = "2014-10-31"
	// The tagging API speaks JSON: its version is the X-Amz-Target prefix (see jsonForm).
	taggingVersion = "ResourceGroupsTaggingAPI_20170126"
)

type protocol int

const (
	awsQuery protocol = iota // <XResponse><XResult>..</XResult><ResponseMetadata/></XResponse>, <ErrorResponse>
	ec2Query                 // <XResponse><requestId/>..</XResponse>, <Response><Errors>
	awsJSON                  // JSON 1.1: the result object; errors {"__type": code, "message": ...}
)

type service struct {
	name  string // "elbv2", "ec2", "sts", "rds"
	ns    string // XML namespace of answers
	proto protocol
}

func serviceFor(version string) *service {
	switch version {
	case elbVersion:
		return &service{name: "elbv2", ns: "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/", proto: awsQuery}
	case ec2Version:
		return &service{name: "ec2", ns: "http://ec2.amazonaws.com/doc/2016-11-15/", proto: ec2Query}
	case stsVersion:
		return &service{name: "sts", ns: "https://sts.amazonaws.com/doc/2011-06-15/", proto: awsQuery}
	case rdsVersion:
		return &service{name: "rds", ns: "http://rds.amazonaws.com/doc/2014-10-31/", proto: awsQuery}
	case taggingVersion:
		return &service{name: "tagging", proto: awsJSON}
	}
	return nil
}

func (svc *service) contentType() string {
	if svc.proto == awsJSON {
		return "application/x-amz-json-1.1"
	}
	return "text/xml"
}

// apiError is an error answer: HTTP status, AWS error code, message.
type apiError struct {
	status int
	code   string
	msg    string
}

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// validationError is the code AWS uses for malformed or disallowed parameters (HTTP 400).
func validationError(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "ValidationError", format, args...)
}

// response is what an action returns: a body to wrap in the service's envelope, or an error.
type response struct {
	body any // awsQuery: the <XResult> content (nil = empty); ec2Query: []ec2Field
	err  *apiError
}

func success(body any) response      { return response{body: body} }
func failure(err *apiError) response { return response{err: err} }
func invalidAction(a string) response {
	return failure(errorf(http.StatusBadRequest, "InvalidAction", "The action %s is not valid for this web service", a))
}

// ec2Field is one child element of an ec2query answer, after <requestId>.
type ec2Field struct {
	name  string
	value any
}

type responseMetadata struct {
	RequestID string `xml:"RequestId"`
}

// encodeResult wraps body in the service's envelope.
func encodeResult(svc *service, action, reqID string, body any) ([]byte, error) {
	if svc.proto == awsJSON {
		return json.Marshal(body)
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	start := xml.StartElement{
		Name: xml.Name{Local: action + "Response"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: svc.ns}},
	}
	err := enc.EncodeToken(start)
	if svc.proto == ec2Query {
		err = firstErr(err, enc.EncodeElement(reqID, elem("requestId")))
		fields, _ := body.([]ec2Field)
		for _, f := range fields {
			err = firstErr(err, enc.EncodeElement(f.value, elem(f.name)))
		}
	} else {
		result := elem(action + "Result")
		if body == nil {
			err = firstErr(err, enc.EncodeToken(result), enc.EncodeToken(result.End()))
		} else {
			err = firstErr(err, enc.EncodeElement(body, result))
		}
		err = firstErr(err, enc.EncodeElement(responseMetadata{RequestID: reqID}, elem("ResponseMetadata")))
	}
	err = firstErr(err, enc.EncodeToken(start.End()), enc.Flush())
	return buf.Bytes(), err
}

type queryErrorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Error   struct {
		Type    string
		Code    string
		Message string
	}
	RequestID string `xml:"RequestId"`
}

type ec2ErrorResponse struct {
	XMLName xml.Name `xml:"Response"`
	Errors  struct {
		Error struct {
			Code    string
			Message string
		}
	}
	RequestID string `xml:"RequestID"`
}

// writeError answers e in the service's error shape (ELBv2's when svc is nil).
func writeError(w http.ResponseWriter, svc *service, reqID string, e *apiError) {
	if svc == nil {
		svc = serviceFor(elbVersion)
	}
	if svc.proto == awsJSON {
		writeJSONError(w, e)
		return
	}
	var v any
	if svc.proto == ec2Query {
		var r ec2ErrorResponse
		r.Errors.Error.Code, r.Errors.Error.Message, r.RequestID = e.code, e.msg, reqID
		v = r
	} else {
		r := queryErrorResponse{Xmlns: svc.ns, RequestID: reqID}
		r.Error.Type = "Sender"
		if e.status >= 500 {
			r.Error.Type = "Receiver"
		}
		r.Error.Code, r.Error.Message = e.code, e.msg
		v = r
	}
	b, err := xml.Marshal(v)
	if err != nil { // cannot happen with these types; keep the status and code anyway
		b = nil
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.status)
	_, _ = w.Write(append([]byte(xml.Header), b...))
}

func elem(name string) xml.StartElement { return xml.StartElement{Name: xml.Name{Local: name}} }

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// indexed collects the list prefix.N[.field] of a query form: one map per N (ascending), field -> value.
// A scalar list member (prefix.N) has field "".
func indexed(form url.Values, prefix string) []map[string]string {
	byN := map[int]map[string]string{}
	for k, vs := range form {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok || len(vs) == 0 {
			continue
		}
		num, field, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 {
			continue
		}
		if byN[n] == nil {
			byN[n] = map[string]string{}
		}
		byN[n][field] = vs[0]
	}
	ns := make([]int, 0, len(byN))
	for n := range byN {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	out := make([]map[string]string, len(ns))
	for i, n := range ns {
		out[i] = byN[n]
	}
	return out
}

// members returns an awsQuery string list (prefix.member.N).
func members(form url.Values, prefix string) []string {
	var out []string
	for _, m := range indexed(form, prefix+".member") {
		out = append(out, m[""])
	}
	return out
}

// parseInt32 reads an optional integer parameter; set is false when it is absent.
func parseInt32(form url.Values, key string) (v int32, set bool, e *apiError) {
	s := form.Get(key)
	if s == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, true, validationError("%s %q is not an integer", key, s)
	}
	return int32(n), true, nil
}
