package catalog_test

import (
	"testing"

	"github.com/lro-cancel/lro_cancel/internal/catalog"
)

func TestLookupRPCFindsEveryCancelRPCAndRefusesLooseSpellings(t *testing.T) {
	for _, tc := range []struct {
		path         string
		want         string
		exact, found bool
	}{
		{"/google.longrunning.Operations/CancelOperation", "/google.longrunning.Operations/CancelOperation", true, true},
		{"/google.container.v1.ClusterManager/CancelOperation", "/google.container.v1.ClusterManager/CancelOperation", true, true},
		{"/google.container.v1beta1.ClusterManager/CancelOperation", "/google.container.v1beta1.ClusterManager/CancelOperation", true, true},
		{"/google.cloud.sql.v1.SqlOperationsService/Cancel", "/google.cloud.sql.v1.SqlOperationsService/Cancel", true, true},
		{"/google.cloud.sql.v1beta4.SqlOperationsService/Cancel", "/google.cloud.sql.v1beta4.SqlOperationsService/Cancel", true, true},
		{"/google.longrunning.operations/canceloperation", "/google.longrunning.Operations/CancelOperation", false, true},
		{"//google.longrunning.Operations/CancelOperation", "/google.longrunning.Operations/CancelOperation", false, true},
		{"/x/../google.longrunning.Operations/./CancelOperation/", "/google.longrunning.Operations/CancelOperation", false, true},
		{"/google.longrunning.Operations/GetOperation", "", false, false},
		{"/google.longrunning.Operations/CancelOperationX", "", false, false},
		{"/v1/operations/x:cancel", "", false, false},
	} {
		rpc, exact, found := catalog.LookupRPC(tc.path)
		got := ""
		if rpc != nil {
			got = rpc.Path
		}
		if got != tc.want || exact != tc.exact || found != tc.found {
			t.Errorf("LookupRPC(%q) = %q exact %v found %v, want %q %v %v", tc.path, got, exact, found, tc.want, tc.exact, tc.found)
		}
	}
}

func TestLookupFallbackReadsTheRPCPrefix(t *testing.T) {
	for _, tc := range []struct {
		path         string
		exact, found bool
	}{
		{"/$rpc/google.longrunning.Operations/CancelOperation", true, true},
		{"/$RPC/google.longrunning.Operations/CancelOperation", false, true},
		{"//$rpc/google.longrunning.Operations/CancelOperation", false, true},
		{"/$rpc//google.longrunning.Operations/CancelOperation", false, true},
		{"/$rpc/google.cloud.sql.v1.SqlOperationsService/Cancel", true, true},
		{"/$rpcx/google.longrunning.Operations/CancelOperation", false, false},
		{"/a$rpccancel/google.", false, false},
		{"/google.longrunning.Operations/CancelOperation", false, false},
	} {
		_, exact, found := catalog.LookupFallback(tc.path)
		if exact != tc.exact || found != tc.found {
			t.Errorf("LookupFallback(%q) = exact %v found %v, want %v %v", tc.path, exact, found, tc.exact, tc.found)
		}
	}
}

func TestLookupRPCDoesNotAllocateOnOtherPaths(t *testing.T) {
	for _, p := range []string{"/v1/projects/p/locations/l/jobs/j:cancel", "/storage/v1/b/x/o/y", "/google.longrunning.Operations/CancelOperation"} {
		if n := testing.AllocsPerRun(100, func() { catalog.LookupRPC(p); catalog.LookupFallback(p) }); n != 0 {
			t.Errorf("%q: %v allocations", p, n)
		}
	}
}

func rpcOf(t *testing.T, path string) *catalog.RPC {
	t.Helper()
	rpc, _, ok := catalog.LookupRPC(path)
	if !ok {
		t.Fatalf("no RPC %s", path)
	}
	return rpc
}

func TestRecognizeRPCChoosesTheRESTMethodOfTheOperationName(t *testing.T) {
	lro := "/google.longrunning.Operations/CancelOperation"
	gke := "/google.container.v1.ClusterManager/CancelOperation"
	gkeBeta := "/google.container.v1beta1.ClusterManager/CancelOperation"
	sql := "/google.cloud.sql.v1.SqlOperationsService/Cancel"
	sqlBeta := "/google.cloud.sql.v1beta4.SqlOperationsService/Cancel"
	for _, tc := range []struct {
		name, rpc, host string
		values          []string
		kind            catalog.Kind
		id, service, op string
		problem         bool
	}{
		{"vault operation", lro, "vault.googleapis.com", []string{"operations/x"},
			catalog.Listed, "vault.operations.cancel", "vault.googleapis.com", "operations/x", false},
		{"port and letter case of the authority", lro, "Vault.googleapis.com:443", []string{"operations/x"},
			catalog.Listed, "vault.operations.cancel", "vault.googleapis.com", "operations/x", false},
		{"regional host, second version", lro, "us-central1-aiplatform.googleapis.com", []string{"projects/p/locations/us-central1/operations/o"},
			catalog.Listed, "aiplatform.projects.locations.operations.cancel", "aiplatform.googleapis.com", "projects/p/locations/us-central1/operations/o", false},
		{"unknown host", lro, "example.internal", []string{"operations/x"},
			catalog.Unlisted, "", "example.internal", "operations/x", false},
		{"name no template of the host takes", lro, "vault.googleapis.com", []string{"jobs/j"},
			catalog.Unlisted, "", "vault.googleapis.com", "jobs/j", false},
		{"name with a space and a colon", lro, "vault.googleapis.com", []string{"operations/a b:c"},
			catalog.Listed, "vault.operations.cancel", "vault.googleapis.com", "operations/a b:c", false},
		{"empty segment", lro, "vault.googleapis.com", []string{"operations//x"},
			catalog.Ambiguous, "", "vault.googleapis.com", "", false},
		{"dot segment on an unknown host", lro, "example.internal", []string{"operations/../x"},
			catalog.Ambiguous, "", "example.internal", "", false},
		{"empty name", lro, "vault.googleapis.com", []string{""}, 0, "", "", "", true},
		{"gke name form", gke, "container.googleapis.com", []string{"", "", "", "projects/p/locations/l/operations/o"},
			catalog.Listed, "container.projects.locations.operations.cancel", "container.googleapis.com", "projects/p/locations/l/operations/o", false},
		{"gke zone form", gkeBeta, "container.googleapis.com", []string{"p", "z", "o", ""},
			catalog.Listed, "container.projects.zones.operations.cancel", "container.googleapis.com", "projects/p/zones/z/operations/o", false},
		{"gke both forms agreeing", gke, "container.googleapis.com", []string{"p", "l", "o", "projects/p/locations/l/operations/o"},
			catalog.Listed, "container.projects.locations.operations.cancel", "container.googleapis.com", "projects/p/locations/l/operations/o", false},
		{"gke both forms disagreeing", gke, "container.googleapis.com", []string{"p", "l", "other", "projects/p/locations/l/operations/o"},
			0, "", "", "", true},
		{"gke zone form missing the zone", gke, "container.googleapis.com", []string{"p", "", "o", ""}, 0, "", "", "", true},
		{"gke zone with a slash", gke, "container.googleapis.com", []string{"p", "z/../y", "o", ""}, 0, "", "", "", true},
		{"cloud sql v1", sql, "sqladmin.googleapis.com", []string{"o", "p"},
			catalog.Listed, "sql.operations.cancel", "sqladmin.googleapis.com", "projects/p/operations/o", false},
		{"cloud sql v1beta4", sqlBeta, "sqladmin.googleapis.com", []string{"o", "p"},
			catalog.Listed, "sql.operations.cancel", "sqladmin.googleapis.com", "projects/p/operations/o", false},
		{"cloud sql on another host", sql, "sql.example.internal", []string{"o", "p"},
			catalog.Unlisted, "", "sql.example.internal", "projects/p/operations/o", false},
		{"cloud sql without a project", sql, "sqladmin.googleapis.com", []string{"o", ""}, 0, "", "", "", true},
		{"vault through its APIs Explorer alias", lro, "content-vault.googleapis.com", []string{"operations/x"},
			catalog.Listed, "vault.operations.cancel", "vault.googleapis.com", "operations/x", false},
		{"gke through a Private Service Connect endpoint", gke, "container-corp.p.googleapis.com", []string{"p", "z", "o", ""},
			catalog.Listed, "container.projects.zones.operations.cancel", "container.googleapis.com", "projects/p/zones/z/operations/o", false},
		{"cloud sql through its web console alias", sql, "sqladmin.clients6.google.com", []string{"o", "p"},
			catalog.Listed, "sql.operations.cancel", "sqladmin.googleapis.com", "projects/p/operations/o", false},
		{"an operation no template takes on an alias names the API's host", gkeBeta, "container.clients6.google.com", []string{"", "", "", "jobs/j"},
			catalog.Unlisted, "", "container.googleapis.com", "jobs/j", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, problem := catalog.Default().RecognizeRPC(nil, tc.host, rpcOf(t, tc.rpc), tc.values)
			if (problem != "") != tc.problem {
				t.Fatalf("problem %q, want one: %v", problem, tc.problem)
			}
			id := ""
			if res.Method != nil {
				id = res.Method.ID
			}
			if res.Kind != tc.kind || id != tc.id || res.Service != tc.service || res.Operation != tc.op {
				t.Errorf("got %v %q %q %q, want %v %q %q %q", res.Kind, id, res.Service, res.Operation, tc.kind, tc.id, tc.service, tc.op)
			}
		})
	}
}

func TestRecognizeRPCUnderPinnedServices(t *testing.T) {
	rpc := rpcOf(t, "/google.longrunning.Operations/CancelOperation")
	res, _ := catalog.Default().RecognizeRPC([]string{"example.internal", "vault.googleapis.com"}, "gateway.internal", rpc, []string{"operations/x"})
	if res.Kind != catalog.Listed || res.Method.ID != "vault.operations.cancel" {
		t.Errorf("got %v %v, want vault's listed method", res.Kind, res.Method)
	}
}
