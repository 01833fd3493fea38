package pathtemplate

import "testing"

func BenchmarkTemplateMatch(b *testing.B) {
	tmpl := MustParse("/v1/{name=projects/*/locations/*/operations/*}:cancel")
	for _, bc := range []struct{ name, path string }{
		{"hit", "/v1/projects/my-project/locations/us-central1/operations/1234567890:cancel"},
		{"miss", "/v1/projects/my-project/locations/us-central1/datasets/1234567890:cancel"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tmpl.Match(bc.path)
			}
		})
	}
}

func BenchmarkSetMatch200(b *testing.B) {
	s, _ := aiplatformSet()
	for _, bc := range []struct{ name, path string }{
		{"hit", aiplatformHit},
		{"miss", aiplatformMiss},
		{"miss-not-a-cancel", "/v1/projects/my-project/locations/us-central1/endpoints/e:predict"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.Match(bc.path)
			}
		})
	}
}

func BenchmarkAmbiguous(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Ambiguous(aiplatformHit)
	}
}
