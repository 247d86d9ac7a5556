package lambda

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
)

// The EventBridge events the handler serves: a schedule, and RDS instance and cluster events.
const (
	SourceSchedule        = "aws.events"
	DetailTypeSchedule    = "Scheduled Event"
	SourceRDS             = "aws.rds"
	DetailTypeRDSInstance = "RDS DB Instance Event"
	DetailTypeRDSCluster  = "RDS DB Cluster Event"
)

// FailoverEventIDs are the RDS events after which a database's address may change. On each, the
// mappings of that database are watched; the EventBridge rule of deploy/lambda matches exactly these (a test
// checks it). "Started" and "failed" events are included: the DNS record may change after any of them, and a
// watch that sees no change costs one resolution a second for the window.
func FailoverEventIDs() []string {
	return []string{
		// DB instance (Multi-AZ): failover started; failover to the standby complete (DNS may lag); failover
		// completed; activation started and completed (the standby taking over); recovered from a partial failover.
		"RDS-EVENT-0013", "RDS-EVENT-0015", "RDS-EVENT-0049", "RDS-EVENT-0050", "RDS-EVENT-0051", "RDS-EVENT-0065",
		// DB cluster (Aurora, Multi-AZ DB cluster): failover failed; promoting the previous primary again; failover
		// completed; same-AZ and cross-AZ failover started.
		"RDS-EVENT-0069", "RDS-EVENT-0070", "RDS-EVENT-0071", "RDS-EVENT-0072", "RDS-EVENT-0073",
	}
}

// MemberEventIDs are the RDS events after which the members of an rds: source may have changed: DB instance
// created (RDS-EVENT-0005: a new Aurora reader, a new read replica) and DB instance deleted (RDS-EVENT-0003).
// On each, the membership of the matching mappings is read again before their pass. A reader promoted to writer
// is a cluster failover (FailoverEventIDs), which reads the membership again too.
func MemberEventIDs() []string { return []string{"RDS-EVENT-0003", "RDS-EVENT-0005"} }

// RuleEventIDs are the EventIDs the EventBridge rule of deploy/lambda sends to the function: FailoverEventIDs and
// MemberEventIDs, sorted.
func RuleEventIDs() []string {
	return slices.Sorted(slices.Values(slices.Concat(FailoverEventIDs(), MemberEventIDs())))
}

// Direct is the payload of a direct invocation (aws lambda invoke, the console's test event).
type Direct struct {
	DryRun bool     `json:"dry_run"` // plan only: no RegisterTargets/DeregisterTargets call (I8)
	Syncs  []string `json:"syncs"`   // mapping names; empty = all
}

// RDSDetail is the detail of an RDS DB instance or cluster event.
type RDSDetail struct {
	EventID          string   `json:"EventID"`
	SourceIdentifier string   `json:"SourceIdentifier"`
	SourceArn        string   `json:"SourceArn"`
	SourceType       string   `json:"SourceType"`
	Message          string   `json:"Message"`
	Date             string   `json:"Date"`
	EventCategories  []string `json:"EventCategories"`
}

// DBIdentifier is the DB instance or cluster the event is about: the name in SourceArn (…:db:NAME or
// …:cluster:NAME), else SourceIdentifier without the "rds:" prefix AWS's documented examples carry, lower-cased
// as RDS stores identifiers.
func (d RDSDetail) DBIdentifier() string {
	if a, err := arn.Parse(d.SourceArn); err == nil {
		for _, prefix := range []string{"db:", "cluster:"} {
			if name, ok := strings.CutPrefix(a.Resource, prefix); ok && name != "" {
				return strings.ToLower(name)
			}
		}
	}
	return strings.ToLower(strings.TrimPrefix(d.SourceIdentifier, "rds:"))
}

// MemberChange reports whether the event is one of MemberEventIDs.
func (d RDSDetail) MemberChange() bool { return slices.Contains(MemberEventIDs(), d.EventID) }

// Failover reports whether the event is one of FailoverEventIDs.
func (d RDSDetail) Failover() bool { return slices.Contains(FailoverEventIDs(), d.EventID) }

type kind string

const (
	kindScheduled kind = "scheduled"
	kindRDS       kind = "rds"
	kindDirect    kind = "direct"
)

// event is a parsed invocation payload.
type event struct {
	kind   kind
	id     string // EventBridge event id
	rds    RDSDetail
	direct Direct
}

// EventError is an invocation payload the handler does not serve. Lambda reports it with errorType "EventError".
type EventError struct{ msg string }

func (e *EventError) Error() string { return e.msg }

const served = `ipsync serves an EventBridge scheduled event (source "aws.events", detail-type "Scheduled Event"), ` +
	`an RDS event (source "aws.rds", detail-type "RDS DB Instance Event" or "RDS DB Cluster Event"), ` +
	`or a direct invocation {"dry_run": true|false, "syncs": ["name", ...]}`

func badEvent(format string, args ...any) error {
	return &EventError{msg: fmt.Sprintf(format, args...) + "; " + served}
}

// envelopeKeys are the top-level keys of an EventBridge event (replay-name: a replayed archived event).
var envelopeKeys = []string{"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail", "replay-name"}

// parseEvent recognises the payload. Anything else is an *EventError that says what was received and what is
// served: a misrouted rule or a mistyped test event should be obvious from the error alone.
//
// Whether an invocation changes anything must never be a guess (I8): a key given twice (encoding/json would
// keep the last), a null dry_run or syncs (it would read as absent, so live), and dry_run on an EventBridge
// event, which does not read it, are all refused.
func parseEvent(payload []byte) (event, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(payload, &keys); err != nil || keys == nil {
		what := strings.TrimSpace(string(payload))
		if len(what) > 80 {
			what = what[:80] + "..."
		}
		return event{}, badEvent("the event is not a JSON object (%q)", what)
	}
	if k := duplicateKey(payload); k != "" {
		return event{}, badEvent("the event has the key %q twice; give each key once", k)
	}
	_, hasSource := keys["source"]
	_, hasDetailType := keys["detail-type"]
	if !hasSource && !hasDetailType {
		return parseDirect(payload, keys)
	}
	return parseEventBridge(payload, keys)
}

// eventBridge is the envelope of an EventBridge event.
type eventBridge struct {
	ID         string          `json:"id"`
	Source     string          `json:"source"`
	DetailType string          `json:"detail-type"`
	Detail     json.RawMessage `json:"detail"`
}

// parseEventBridge serves a scheduled event or an RDS event; any key outside the envelope is refused.
func parseEventBridge(payload []byte, keys map[string]json.RawMessage) (event, error) {
	for k := range keys {
		if !slices.Contains(envelopeKeys, k) {
			return event{}, badEvent("the EventBridge event has the key %q, which is not part of an EventBridge event "+
				"(dry_run and syncs belong to a direct invocation only, without source and detail-type)", k)
		}
	}
	var env eventBridge
	if err := json.Unmarshal(payload, &env); err != nil {
		return event{}, badEvent("the EventBridge event does not have the usual shape: %v", err)
	}
	switch {
	case env.Source == SourceSchedule && env.DetailType == DetailTypeSchedule:
		return parseScheduled(env)
	case env.Source == SourceRDS && (env.DetailType == DetailTypeRDSInstance || env.DetailType == DetailTypeRDSCluster):
		return parseRDS(env)
	default:
		return event{}, badEvent("got an event with source %q and detail-type %q", env.Source, env.DetailType)
	}
}

// parseScheduled serves a scheduled event, whose detail must be empty: a scheduled pass takes no settings.
func parseScheduled(env eventBridge) (event, error) {
	var detail map[string]json.RawMessage
	if err := json.Unmarshal(env.Detail, &detail); len(env.Detail) > 0 && (err != nil || len(detail) > 0) {
		return event{}, badEvent("the scheduled event's detail is %s, not {}: a scheduled pass takes no settings "+
			"(dry_run and syncs belong to a direct invocation only)", env.Detail)
	}
	return event{kind: kindScheduled, id: env.ID}, nil
}

// parseRDS serves an RDS instance or cluster event. RDS may add fields to its events, so other keys of the detail
// are served; dry_run is not one of them.
func parseRDS(env eventBridge) (event, error) {
	var d RDSDetail
	if err := json.Unmarshal(env.Detail, &d); err != nil {
		return event{}, badEvent("the %s's detail is not an RDS event detail: %v", env.DetailType, err)
	}
	var detail map[string]json.RawMessage
	if json.Unmarshal(env.Detail, &detail) == nil && detail["dry_run"] != nil {
		return event{}, badEvent("the %s's detail has the key \"dry_run\": an RDS event takes no settings "+
			"(dry_run belongs to a direct invocation only)", env.DetailType)
	}
	if d.EventID == "" || d.DBIdentifier() == "" {
		return event{}, badEvent("the %s has no detail.EventID or no detail.SourceArn/SourceIdentifier", env.DetailType)
	}
	return event{kind: kindRDS, id: env.ID, rds: d}, nil
}

func parseDirect(payload []byte, keys map[string]json.RawMessage) (event, error) {
	var unknown []string
	for k := range keys {
		if k != "dry_run" && k != "syncs" {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return event{}, badEvent("got a JSON object with keys %q", unknown)
	}
	for _, k := range []string{"dry_run", "syncs"} {
		if v, ok := keys[k]; ok && string(bytes.TrimSpace(v)) == "null" {
			return event{}, badEvent("the direct invocation's %q is null; give a value or leave the key out", k)
		}
	}
	var d Direct
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return event{}, badEvent("the direct invocation is malformed: %v", err)
	}
	return event{kind: kindDirect, direct: d}, nil
}

// duplicateKey returns a key that appears twice in one object of the JSON text payload, at any depth, or "".
// payload must be valid JSON.
func duplicateKey(payload []byte) string {
	type object struct {
		keys      map[string]bool
		wantsKey  bool // the next string token is a key, not a value
		notObject bool // an array
	}
	var open []*object
	dec := json.NewDecoder(bytes.NewReader(payload))
	for {
		tok, err := dec.Token()
		if err != nil {
			return "" // io.EOF, or invalid JSON, which the caller refuses on its own
		}
		var top *object
		if len(open) > 0 {
			top = open[len(open)-1]
		}
		inObject := top != nil && !top.notObject
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if inObject {
				top.wantsKey = true // after this value, the enclosing object's next token is a key
			}
			open = append(open, &object{keys: map[string]bool{}, wantsKey: true, notObject: tok == json.Delim('[')})
		case json.Delim('}'), json.Delim(']'):
			open = open[:len(open)-1]
		default:
			if !inObject {
				continue
			}
			if !top.wantsKey {
				top.wantsKey = true // a scalar value
				continue
			}
			k, _ := tok.(string)
			if top.keys[k] {
				return k
			}
			top.keys[k] = true
			top.wantsKey = false
		}
	}
}
