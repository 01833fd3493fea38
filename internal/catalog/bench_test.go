package catalog_test

import (
	"testing"

	"github.com/lro-cancel/lro_cancel/internal/catalog"
)

func benchmarkRecognize(b *testing.B, host, method, path string, want catalog.Kind) {
	c := catalog.Default()
	if r := c.Recognize(host, method, path); r.Kind != want {
		b.Fatalf("Recognize(%q, %s, %q) = %v, want %v", host, method, path, r.Kind, want)
	}
	b.ReportAllocs()
	for b.Loop() {
		c.Recognize(host, method, path)
	}
}

func BenchmarkRecognizeNotCancel(b *testing.B) {
	benchmarkRecognize(b, "storage.googleapis.com", "POST", "/upload/storage/v1/b/bucket/o", catalog.NotCancel)
}

func BenchmarkRecognizeNotCancelJob(b *testing.B) {
	benchmarkRecognize(b, "batch.googleapis.com", "POST", "/v1/projects/p/locations/l/jobs/j:cancel", catalog.NotCancel)
}

func BenchmarkRecognizeListedVault(b *testing.B) {
	benchmarkRecognize(b, "vault.googleapis.com", "POST", "/v1/operations/export-123:cancel", catalog.Listed)
}

func BenchmarkRecognizeListedAiplatformRegional(b *testing.B) {
	benchmarkRecognize(b, "europe-west4-aiplatform.googleapis.com", "POST",
		"/v1beta1/projects/p/locations/europe-west4/tensorboards/t/experiments/e/runs/r/timeSeries/s/operations/o:cancel", catalog.Listed)
}

func BenchmarkRecognizeUnlisted(b *testing.B) {
	benchmarkRecognize(b, "example.googleapis.com", "POST", "/v1/projects/p/operations/o:cancel", catalog.Unlisted)
}

// BenchmarkRecognizeAllMethods cycles through one synthesized path per
// builtin method, each on its service's host.
func BenchmarkRecognizeAllMethods(b *testing.B) {
	type req struct{ host, method, path string }
	var reqs []req
	for _, m := range catalog.Builtin() {
		reqs = append(reqs, req{m.Service, m.HTTPMethod, synthesize(m.Template)})
	}
	c := catalog.Default()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r := reqs[i%len(reqs)]
		c.Recognize(r.host, r.method, r.path)
		i++
	}
}

func BenchmarkRecognizeListedAlias(b *testing.B) {
	benchmarkRecognize(b, "vault-corp.p.googleapis.com", "POST", "/v1/operations/export-123:cancel", catalog.Listed)
}

func BenchmarkRecognizeNotCancelUnknownAliasLikeHost(b *testing.B) {
	benchmarkRecognize(b, "content-example.googleapis.com", "POST", "/v1/projects/p/locations/l/jobs/j:cancel", catalog.NotCancel)
}

func BenchmarkRecognizeAmbiguousEncodedSlash(b *testing.B) {
	benchmarkRecognize(b, "vault.googleapis.com", "POST", "/v1/operations%2Fexport-123:cancel", catalog.Ambiguous)
}

func benchmarkIsBatchPath(b *testing.B, path string, want bool) {
	if got := catalog.IsBatchPath(path); got != want {
		b.Fatalf("IsBatchPath(%q) = %v, want %v", path, got, want)
	}
	b.ReportAllocs()
	for b.Loop() {
		catalog.IsBatchPath(path)
	}
}

func BenchmarkIsBatchPath(b *testing.B) {
	benchmarkIsBatchPath(b, "/batch", true)
}

func BenchmarkIsBatchPathNotBatch(b *testing.B) {
	benchmarkIsBatchPath(b, "/v1/projects/p/locations/l/batchPredictionJobs/j", false)
}

func BenchmarkIsBatchPathAmbiguous(b *testing.B) {
	benchmarkIsBatchPath(b, "/batch%2Fstorage%2Fv1/", true)
}

func BenchmarkIsSystemParam(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		catalog.IsSystemParam("$prettyPrint")
	}
}
