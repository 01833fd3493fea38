package lrocancel

import (
	"net/http"
	"time"

	"github.com/lro-cancel/lro_cancel/internal/catalog"
	"github.com/lro-cancel/lro_cancel/internal/door/batch"
	"github.com/lro-cancel/lro_cancel/internal/door/grpc"
	"github.com/lro-cancel/lro_cancel/internal/door/rest"
	"github.com/lro-cancel/lro_cancel/internal/door/rpc"
	"github.com/lro-cancel/lro_cancel/internal/govern"
)

// recognizer is the one recognition the handler and the matcher share:
// the catalog with the config's own templates, under the pinned services.
type recognizer struct {
	catalog  *catalog.Catalog
	services []string // normalized; nil means the request's Host
}

// provision builds the catalog with the extra templates, which apply to
// the pinned services, or to every host when none is pinned.
func (z *recognizer) provision(templates, services []string) error {
	var hosts []string
	for _, s := range services {
		if s != "*" && s != "" {
			hosts = append(hosts, s)
		}
	}
	z.services = normalizeHosts(hosts)
	if len(templates) == 0 {
		z.catalog = catalog.Default()
		return nil
	}
	extra := make([]catalog.Method, len(templates))
	for i, t := range templates {
		extra[i] = catalog.Method{
			ID:         "custom",
			Hosts:      z.services,
			HTTPMethod: http.MethodPost,
			Template:   t,
			Body:       catalog.BodyEmpty,
		}
	}
	cat, err := catalog.New(extra)
	if err != nil {
		return err
	}
	z.catalog = cat
	return nil
}

// recognition is what recognize made of a request, before any of its
// body is read: which door it came to, and what that door saw.
type recognition struct {
	door doorKind
	rest catalog.Result
	grpc grpcdoor.Call
	rpc  rpc.Call
}

type doorKind uint8

const (
	notCancel doorKind = iota
	restDoor
	grpcDoor  // gRPC and gRPC-Web
	rpcDoor   // the $rpc fallback
	batchDoor // an HTTP batch to a governed host, which may hold cancels
)

// recognize classifies the request by its method, host, path and headers,
// without reading its body. A request that is not a cancel in any form
// costs no allocation: every cancel path, REST or RPC, spells "cancel".
func (z *recognizer) recognize(r *http.Request) recognition {
	if !catalog.ContainsCancel(r.URL.Path) {
		// A GET whose method override says POST is a batch to Google too.
		if (r.Method == http.MethodPost || rest.OverrideMethod(r.Header) == http.MethodPost) &&
			batch.Recognize(z.catalog, z.services, r) {
			return recognition{door: batchDoor}
		}
		return recognition{}
	}
	if res := rest.Recognize(z.catalog, z.services, r); res.Kind != catalog.NotCancel {
		return recognition{door: restDoor, rest: res}
	}
	if c, ok := grpcdoor.Recognize(r); ok {
		return recognition{door: grpcDoor, grpc: c}
	}
	if c, ok := rpc.Recognize(r); ok {
		return recognition{door: rpcDoor, rpc: c}
	}
	return recognition{}
}

// read has the request's door read the cancel for the core, and returns
// the door that answers it.
func (z *recognizer) read(r *http.Request, rc *recognition, strictBody bool) (x govern.Cancel, d govern.Door) {
	switch rc.door {
	case grpcDoor:
		x, d = grpcdoor.Read(r, rc.grpc, z.catalog, z.services), rc.grpc.Door()
	case rpcDoor:
		x, d = rpc.Read(r, rc.rpc, z.catalog, z.services), rc.rpc.Door()
	default:
		x, d = rest.Read(r, &rc.rest, strictBody), rest.Door{}
	}
	x.Headers, x.Time = r.Header, time.Now()
	return x, d
}

func normalizeHosts(hosts []string) []string {
	if len(hosts) == 0 {
		return nil
	}
	out := make([]string, len(hosts))
	for i, h := range hosts {
		out[i] = catalog.NormalizeHost(h)
	}
	return out
}
