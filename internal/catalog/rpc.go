package catalog

import (
	"net/http"
	"strings"

	"github.com/lro-cancel/lro_cancel/internal/body"
	"github.com/lro-cancel/lro_cancel/internal/pathtemplate"
)

// RPC is one gRPC method that cancels an operation. The gRPC, gRPC-Web and
// $rpc doors recognise it by its path; the request message's fields say
// which REST method of the host it is, and so which scopes it needs.
type RPC struct {
	// Path is the gRPC method path, e.g.
	// "/google.longrunning.Operations/CancelOperation".
	Path string
	// Fields are the request message's fields, all strings; JSONNames
	// their JSON names, in the same order, for the $rpc door's JSON body.
	Fields    []body.ProtoField
	JSONNames []string
	// rest builds the REST path of the call from the field values; nil
	// means the method is chosen by the operation name (RecognizeName).
	// The values come by value, so that a door's values stay on its stack.
	rest func(values [MaxFields]string) (path, operation, problem string)
}

// MaxFields is the most fields an RPC's request message has (GKE's four):
// a door may hold the values of any RPC in a [MaxFields]string.
const MaxFields = 4

// The request messages' fields.
var (
	longrunningFields = []body.ProtoField{{Number: 1, Name: "name"}}
	containerFields   = []body.ProtoField{{Number: 1, Name: "projectId"}, {Number: 2, Name: "zone"},
		{Number: 3, Name: "operationId"}, {Number: 4, Name: "name"}}
	sqlFields = []body.ProtoField{{Number: 1, Name: "operation"}, {Number: 2, Name: "project"}}
)

func init() {
	for i := range rpcs {
		if len(rpcs[i].Fields) > MaxFields {
			panic("catalog: " + rpcs[i].Path + " has more fields than MaxFields")
		}
		for _, f := range rpcs[i].Fields {
			rpcs[i].JSONNames = append(rpcs[i].JSONNames, f.Name)
		}
	}
}

var rpcs = [...]RPC{
	{Path: "/google.longrunning.Operations/CancelOperation", Fields: longrunningFields},
	{Path: "/google.container.v1.ClusterManager/CancelOperation", Fields: containerFields, rest: containerPath("v1")},
	{Path: "/google.container.v1beta1.ClusterManager/CancelOperation", Fields: containerFields, rest: containerPath("v1beta1")},
	{Path: "/google.cloud.sql.v1.SqlOperationsService/Cancel", Fields: sqlFields, rest: sqlPath("/v1")},
	{Path: "/google.cloud.sql.v1beta4.SqlOperationsService/Cancel", Fields: sqlFields, rest: sqlPath("/sql/v1beta4")},
}

// RPCs lists the cancel RPCs, in the table's order (for `caddy lro-cancel
// catalog`).
func RPCs() []*RPC {
	out := make([]*RPC, len(rpcs))
	for i := range rpcs {
		out[i] = &rpcs[i]
	}
	return out
}

// LookupRPC finds the cancel RPC a request path names. exact is false when
// the path only names it loosely (another letter case, dot or empty
// segments, a trailing slash): no server should route that, but one may,
// so such a request is refused rather than passed. It does not allocate.
func LookupRPC(path string) (rpc *RPC, exact, found bool) {
	for i := range rpcs {
		if path == rpcs[i].Path {
			return &rpcs[i], true, true
		}
	}
	// Every RPC's method segment starts with "Cancel", and its service
	// with "google.": anything else is no RPC, however loosely read.
	if !containsFold(path, "/cancel") || !containsFold(path, "google.") {
		return nil, false, false
	}
	loose := loosen(path)
	for i := range rpcs {
		if strings.EqualFold(loose, rpcs[i].Path) {
			return &rpcs[i], false, true
		}
	}
	return nil, false, false
}

// RPCPrefix is the path prefix of Google's $rpc fallback, which carries a
// gRPC method over plain HTTP.
const RPCPrefix = "/$rpc"

// LookupFallback is LookupRPC for a $rpc path, "/$rpc/<gRPC method path>".
func LookupFallback(path string) (rpc *RPC, exact, found bool) {
	if hasFallbackPrefix(path) {
		rpc, exact, found = LookupRPC(path[len(RPCPrefix):])
		return rpc, exact && path[:len(RPCPrefix)] == RPCPrefix, found
	}
	if !containsFold(path, "$rpc") || !containsFold(path, "/cancel") || !containsFold(path, "google.") {
		return nil, false, false
	}
	// "//$rpc/...", "/./$rpc/...": loosely a $rpc path.
	if loose := loosen(path); hasFallbackPrefix(loose) {
		rpc, _, found = LookupRPC(loose[len(RPCPrefix):])
		return rpc, false, found
	}
	return nil, false, false
}

func hasFallbackPrefix(path string) bool {
	return len(path) > len(RPCPrefix) && strings.EqualFold(path[:len(RPCPrefix)], RPCPrefix) && path[len(RPCPrefix)] == '/'
}

// loosen reads path as a lenient server might: dot segments resolved,
// empty segments and a trailing slash dropped. Only would-be cancels get
// here, so it may allocate.
func loosen(path string) string {
	var segs []string
	for _, s := range strings.Split(path, "/") {
		switch s {
		case "", ".":
		case "..":
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			}
		default:
			segs = append(segs, s)
		}
	}
	return "/" + strings.Join(segs, "/")
}

// containsFold reports whether s contains the lower-case ASCII word,
// in any letter case, without allocating.
func containsFold(s, word string) bool {
	for i := 0; i+len(word) <= len(s); i++ {
		if s[i]|0x20 == word[0] && strings.EqualFold(s[i:i+len(word)], word) {
			return true
		}
	}
	return false
}

// ContainsCancelOrBatch reports whether s contains "cancel" or "batch" in
// any letter case, as every decoded path of a cancel (REST or RPC) and of
// a batch does. It does not allocate.
func ContainsCancelOrBatch(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] | 0x20 {
		case 'c':
			if i+len("cancel") <= len(s) && strings.EqualFold(s[i:i+len("cancel")], "cancel") {
				return true
			}
		case 'b':
			if i+len("batch") <= len(s) && strings.EqualFold(s[i:i+len("batch")], "batch") {
				return true
			}
		}
	}
	return false
}

// RecognizeRPC finds the method a cancel RPC with these field values
// (parallel to rpc.Fields) is on host, under the pinned services when
// there are any. A name no template takes is Unlisted: the call itself
// says it is a cancel. problem is set when the values cannot name one
// operation for certain (a required field missing, a '/' inside a
// single-segment value, two forms that disagree).
func (c *Catalog) RecognizeRPC(services []string, host string, rpc *RPC, values []string) (res Result, problem string) {
	hosts := services
	if len(hosts) == 0 {
		hosts = []string{host}
	}
	var path, operation string
	if rpc.rest != nil {
		var held [MaxFields]string
		copy(held[:], values)
		if path, operation, problem = rpc.rest(held); problem != "" {
			return Result{}, problem
		}
	} else if operation = values[0]; operation == "" {
		return Result{}, "Field \"name\" is required."
	}
	for _, h := range hosts {
		var r Result
		if path == "" {
			r = c.RecognizeName(h, operation)
		} else if r = c.Recognize(h, http.MethodPost, path); r.Kind == NotCancel || r.Kind == Unlisted {
			r = Result{Kind: Unlisted, Service: c.Service(h), Operation: operation}
		}
		if r.Kind.Outranks(res.Kind) {
			res = r
		}
		if res.Kind == Listed {
			break
		}
	}
	return res, ""
}

// containerPath builds GKE's REST path: the name form
// (projects/*/locations/*/operations/*) when the name is set, else the
// deprecated project_id/zone/operation_id form. When both are given they
// must name the same operation.
func containerPath(version string) func([MaxFields]string) (string, string, string) {
	return func(v [MaxFields]string) (string, string, string) {
		project, zone, op, name := v[0], v[1], v[2], v[3]
		if name != "" {
			parts := strings.Split(name, "/")
			ok := len(parts) == 6 && parts[0] == "projects" && parts[2] == "locations" && parts[4] == "operations"
			if (project != "" || zone != "" || op != "") &&
				(!ok || project != "" && project != parts[1] || zone != "" && zone != parts[3] || op != "" && op != parts[5]) {
				return "", "", "Fields \"name\" and \"projectId\", \"zone\", \"operationId\" name different operations."
			}
			return "/" + version + "/" + pathtemplate.Escape(name) + ":cancel", name, ""
		}
		if p := segmentsProblem(containerFields[:3], v[:3]); p != "" {
			return "", "", p
		}
		return "/" + version + "/projects/" + pathtemplate.Escape(project) + "/zones/" + pathtemplate.Escape(zone) +
				"/operations/" + pathtemplate.Escape(op) + ":cancel",
			"projects/" + project + "/zones/" + zone + "/operations/" + op, ""
	}
}

// sqlPath builds Cloud SQL's REST path, .../projects/{project}/operations/{operation}/cancel.
func sqlPath(prefix string) func([MaxFields]string) (string, string, string) {
	return func(v [MaxFields]string) (string, string, string) {
		op, project := v[0], v[1]
		if p := segmentsProblem([]body.ProtoField{sqlFields[1], sqlFields[0]}, []string{project, op}); p != "" {
			return "", "", p
		}
		return prefix + "/projects/" + pathtemplate.Escape(project) + "/operations/" + pathtemplate.Escape(op) + "/cancel",
			"projects/" + project + "/operations/" + op, ""
	}
}

// segmentsProblem requires each value to be one non-empty path segment.
func segmentsProblem(fields []body.ProtoField, values []string) string {
	for i, v := range values {
		switch {
		case v == "":
			return "Field \"" + fields[i].Name + "\" is required."
		case strings.Contains(v, "/") || v == "." || v == "..":
			return "Field \"" + fields[i].Name + "\" must be a single path segment."
		}
	}
	return ""
}
