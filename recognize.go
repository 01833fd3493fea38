package lrocancel

import (
	"net/http"

	"github.com/lro-cancel/lro_cancel/internal/catalog"
	"github.com/lro-cancel/lro_cancel/internal/door/rest"
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

// recognize classifies the request without reading its body. A request
// that is not a cancel costs no allocation.
func (z *recognizer) recognize(r *http.Request) catalog.Result {
	return rest.Recognize(z.catalog, z.services, r)
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
