package slowpath

import (
	"net/http"
	"strings"

	"github.com/ipfront/ipfront/slowpath/ui"
)

// routeUI adds the status page: GET / and its assets under /ui/ (package
// ui), behind the same guard and authorization as every endpoint.
func (a *API) routeUI(mux *http.ServeMux) {
	ui.Register(mux, ui.Options{Control: a.uiControl})
}

// uiControl decides whether the status page offers its drain and enable
// buttons: when the request carries the bearer token (authorize has
// checked it by the time the page is served) or the listener is reachable
// only from this host, the two cases in which the same client could drain
// a server with ipfront ctl.
func (a *API) uiControl(r *http.Request) bool {
	if LoopbackListen(a.cfg.Listen) {
		return true
	}
	_, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && a.cfg.Token != ""
}
