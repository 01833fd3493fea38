package lrocancel

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// `caddy lro-cancel catalog` lists, beside each REST method, the gRPC
// methods and $rpc paths the doors govern as that method.
func TestCatalogListsTheRPCsBesideTheRESTMethods(t *testing.T) {
	var out bytes.Buffer
	if code, err := runCatalog(&out, "vault.googleapis.com", false); code != exitForwards {
		t.Fatalf("exit %d: %v", code, err)
	}
	want := "  body     empty\n" +
		"  grpc     /google.longrunning.Operations/CancelOperation\n" +
		"  $rpc     POST /$rpc/google.longrunning.Operations/CancelOperation\n"
	if !strings.Contains(out.String(), want) {
		t.Errorf("vault's catalog lacks\n%s\n in:\n%s", want, out.String())
	}

	for _, tt := range []struct {
		service, template string
		grpc              []string
	}{
		{"sqladmin.googleapis.com", "/v1/projects/{project}/operations/{operation}/cancel",
			[]string{"/google.cloud.sql.v1.SqlOperationsService/Cancel"}},
		{"sqladmin.googleapis.com", "/sql/v1beta4/projects/{project}/operations/{operation}/cancel",
			[]string{"/google.cloud.sql.v1beta4.SqlOperationsService/Cancel"}},
		{"container.googleapis.com", "/v1/projects/{projectId}/zones/{zone}/operations/{operationId}:cancel",
			[]string{"/google.container.v1.ClusterManager/CancelOperation"}},
		{"container.googleapis.com", "/v1/{name=projects/*/locations/*/operations/*}:cancel",
			[]string{"/google.longrunning.Operations/CancelOperation", "/google.container.v1.ClusterManager/CancelOperation"}},
	} {
		out.Reset()
		if code, err := runCatalog(&out, tt.service, true); code != exitForwards {
			t.Fatalf("%s: exit %d: %v", tt.service, code, err)
		}
		var methods []catalogMethod
		if err := json.Unmarshal(out.Bytes(), &methods); err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(methods, func(m catalogMethod) bool { return m.Template == tt.template })
		if i < 0 {
			t.Fatalf("%s: no method %s", tt.service, tt.template)
		}
		m := methods[i]
		if !slices.Equal(m.GRPC, tt.grpc) {
			t.Errorf("%s: grpc %q, want %q", tt.template, m.GRPC, tt.grpc)
		}
		for j, path := range m.GRPC {
			if j >= len(m.RPC) || m.RPC[j] != "/$rpc"+path {
				t.Errorf("%s: rpc %q, want the $rpc path of each of %q", tt.template, m.RPC, m.GRPC)
			}
		}
	}
}
