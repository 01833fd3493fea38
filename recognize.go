package lrocancel

import (
	"net/http"
	"time"

	"github.com/lro-cancel/lro_cancel/internal/catalog"
	"github.com/lro-cancel/lro_cancel/internal/door/grpc"
	"github.com/lro-cancel/lro_cancel/internal/door/rest"
	"github.com/lro-cancel/lro_cancel/internal/door/rpc"
	"github.com/lro-cancel/lro_cancel/internal/govern"
	"github.com/lro-cancel/lro_cancel/internal/reading"
)

// recognizer is the one reading the handler, the matcher and `explain`
// share: the reader over the catalog with the config's own templates,
// under the pinned services.
type recognizer struct {
	reader   *reading.Reader
	catalog  *catalog.Catalog
	services []string // normalized; nil means the request's Host
}

// provision builds the catalog with the extra templates, which apply to
// the pinned services, or to every host when none is pinned, and the
// reader over it.
func (z *recognizer) provision(templates, services []string) error {
	var hosts []string
	for _, s := range services {
		if s != "*" && s != "" {
			hosts = append(hosts, s)
		}
	}
	z.services = normalizeHosts(hosts)
	z.catalog = catalog.Default()
	if len(templates) > 0 {
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
	}
	z.reader = reading.New(z.catalog, z.services)
	return nil
}

// refusalOf is the core's denial of a request the reader refused, nil
// when the reader did not refuse it.
func refusalOf(rd *reading.Reading) *govern.Denial {
	switch rd.Refusal {
	case reading.AmbiguousRequest:
		return govern.AmbiguousRequest(rd.Why)
	case reading.AmbiguousPath:
		return govern.AmbiguousPath()
	case reading.MethodOverride:
		return govern.MethodOverride()
	}
	return nil
}

// read has the reading's door read the cancel for the core (its wire
// format only: whether it is a cancel, the reader has said), and returns
// the door that answers it.
func (z *recognizer) read(r *http.Request, rd *reading.Reading, strictBody bool) (x govern.Cancel, d govern.Door) {
	refusal := refusalOf(rd)
	switch rd.Door {
	case reading.GRPC:
		c := grpcdoor.CallFor(rd.RPC, rd.Exact, rd.ContentType)
		x, d = grpcdoor.Read(r, c, z.catalog, z.services, refusal), c.Door()
	case reading.RPC:
		c := rpc.CallFor(rd.RPC, rd.Exact, rd.ContentType)
		x, d = rpc.Read(r, c, z.catalog, z.services, refusal), c.Door()
	default:
		// REST, and a batch part that is itself a batch (refused).
		x, d = rest.Read(r, &rd.REST, strictBody, refusal), rest.Door{}
	}
	if x.Service == "" {
		x.Service = rd.Service
	}
	x.Headers, x.Time = r.Header, time.Now()
	x.ReadCaller(r)
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
