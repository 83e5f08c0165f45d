package harness

// A fake Kubernetes API server: just what Traefik v3.6's Kubernetes CRD provider reads (client-go
// informers: a list, then a watch, of each namespaced kind it follows), serving fixed objects, so
// that Traefik's own CRD provider builds routers and middlewares from manifests with no cluster.
// Watches stay open with no events.

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// fakeKubeKinds maps "<apiVersion>/<plural>" to the kind listed there.
var fakeKubeKinds = map[string]string{
	"v1/services": "Service", "v1/secrets": "Secret", "v1/configmaps": "ConfigMap", "v1/endpoints": "Endpoints",
	"v1/nodes": "Node", "v1/namespaces": "Namespace",
	"discovery.k8s.io/v1/endpointslices": "EndpointSlice",
	"traefik.io/v1alpha1/ingressroutes":  "IngressRoute", "traefik.io/v1alpha1/ingressroutetcps": "IngressRouteTCP",
	"traefik.io/v1alpha1/ingressrouteudps": "IngressRouteUDP", "traefik.io/v1alpha1/middlewares": "Middleware",
	"traefik.io/v1alpha1/middlewaretcps": "MiddlewareTCP", "traefik.io/v1alpha1/tlsoptions": "TLSOption",
	"traefik.io/v1alpha1/tlsstores": "TLSStore", "traefik.io/v1alpha1/serverstransports": "ServersTransport",
	"traefik.io/v1alpha1/serverstransporttcps": "ServersTransportTCP", "traefik.io/v1alpha1/traefikservices": "TraefikService",
}

// FakeKube is a running fake Kubernetes API server.
type FakeKube struct {
	URL   string
	Token string // the bearer token it requires

	srv      *http.Server
	mu       sync.Mutex
	objects  []map[string]any
	requests []string
	done     chan struct{}
}

// StartFakeKube serves objects (each with apiVersion, kind, metadata.name, metadata.namespace)
// until the env closes.
func StartFakeKube(env *Env, objects []map[string]any) (*FakeKube, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	k := &FakeKube{URL: "http://" + ln.Addr().String(), Token: RandomString(24), done: make(chan struct{})}
	for i, o := range objects {
		meta, _ := o["metadata"].(map[string]any)
		if meta == nil {
			return nil, fmt.Errorf("object %d has no metadata", i)
		}
		if meta["uid"] == nil {
			meta["uid"] = fmt.Sprintf("00000000-0000-0000-0000-%012d", i+1)
		}
		meta["resourceVersion"] = "1"
		if meta["creationTimestamp"] == nil {
			meta["creationTimestamp"] = "2026-01-01T00:00:00Z"
		}
		k.objects = append(k.objects, o)
	}
	k.srv = &http.Server{Handler: http.HandlerFunc(k.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = k.srv.Serve(ln) }()
	env.OnClose(func() {
		close(k.done)
		_ = k.srv.Close()
	})
	return k, nil
}

// Requests lists "METHOD uri" of every request so far.
func (k *FakeKube) Requests() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.requests...)
}

func (k *FakeKube) serve(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	k.requests = append(k.requests, r.Method+" "+r.URL.RequestURI())
	k.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "Bearer "+k.Token {
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Unauthorized", "code": 401})
		return
	}
	// /api/v1[/namespaces/<ns>]/<plural> or /apis/<group>/<version>[/namespaces/<ns>]/<plural>
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var apiVersion string
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		apiVersion, parts = parts[1], parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		apiVersion, parts = parts[1]+"/"+parts[2], parts[3:]
	default:
		k.notFound(w, r.URL.Path)
		return
	}
	ns := ""
	if len(parts) == 3 && parts[0] == "namespaces" {
		ns, parts = parts[1], parts[2:]
	}
	if len(parts) != 1 {
		k.notFound(w, r.URL.Path)
		return
	}
	kind, ok := fakeKubeKinds[apiVersion+"/"+parts[0]]
	if !ok {
		k.notFound(w, r.URL.Path)
		return
	}
	if q := r.URL.Query().Get("watch"); q == "true" || q == "1" {
		w.WriteHeader(http.StatusOK)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		select {
		case <-r.Context().Done():
		case <-k.done:
		}
		return
	}
	items := []map[string]any{}
	k.mu.Lock()
	for _, o := range k.objects {
		meta := o["metadata"].(map[string]any)
		if o["apiVersion"] == apiVersion && o["kind"] == kind && (ns == "" || meta["namespace"] == ns) {
			items = append(items, o)
		}
	}
	k.mu.Unlock()
	_ = json.NewEncoder(w).Encode(map[string]any{
		"kind": kind + "List", "apiVersion": apiVersion,
		"metadata": map[string]any{"resourceVersion": "1"},
		"items":    items,
	})
}

func (k *FakeKube) notFound(w http.ResponseWriter, path string) {
	w.WriteHeader(http.StatusNotFound)
	_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "message": "the server could not find the requested resource " + path, "code": 404})
}
