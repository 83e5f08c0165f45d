package harness

// A fake Docker Engine API on a unix socket: just what Traefik v3.6's Docker provider calls
// (pkg/provider/docker with github.com/docker/docker v28 client: API-version negotiation over
// /_ping, then /vX.Y/version, /vX.Y/containers/json?all=1, /vX.Y/containers/{id}/json and a
// streaming /vX.Y/events), so Traefik's own label parser builds routers and middlewares from
// container labels with no Docker daemon.

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// FakeDockerAPIVersion is the Engine API version the fake answers with (Docker 27.x).
const FakeDockerAPIVersion = "1.47"

// FakeContainer is one running container as the fake reports it.
type FakeContainer struct {
	ID     string            // 64 hex characters; generated when empty
	Name   string            // without the leading "/"
	Labels map[string]string // the container's labels
	IP     string            // its address on the "bridge" network (e.g. 127.0.0.1)
}

// FakeDocker is a running fake Docker Engine API.
type FakeDocker struct {
	Socket string // the unix socket path (endpoint unix://<Socket>)

	srv        *http.Server
	ln         net.Listener
	mu         sync.Mutex
	containers []FakeContainer
	requests   []string
	watchers   map[chan []byte]bool
	done       chan struct{}
}

var versionPrefix = regexp.MustCompile(`^/v[0-9]+\.[0-9]+(/.*)$`)

// StartFakeDocker listens on a fresh unix socket (short path: sun_path is 108 bytes) and serves
// the containers until the env closes.
func StartFakeDocker(env *Env, containers []FakeContainer) (*FakeDocker, error) {
	dir, err := os.MkdirTemp("", "fakedocker-")
	if err != nil {
		return nil, err
	}
	for i := range containers {
		if containers[i].ID == "" {
			containers[i].ID = strings.Repeat(fmt.Sprintf("%02x", i+1), 32)
		}
	}
	d := &FakeDocker{Socket: filepath.Join(dir, "docker.sock"), containers: containers, watchers: map[chan []byte]bool{}, done: make(chan struct{})}
	d.ln, err = net.Listen("unix", d.Socket)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	d.srv = &http.Server{Handler: http.HandlerFunc(d.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = d.srv.Serve(d.ln) }()
	env.OnClose(func() {
		close(d.done)
		_ = d.srv.Close()
		_ = os.RemoveAll(dir)
	})
	return d, nil
}

// Endpoint is the value for Traefik's providers.docker.endpoint.
func (d *FakeDocker) Endpoint() string { return "unix://" + d.Socket }

// Requests lists "METHOD path" of every request served so far.
func (d *FakeDocker) Requests() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.requests...)
}

func (d *FakeDocker) serve(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	d.requests = append(d.requests, r.Method+" "+r.URL.RequestURI())
	containers := append([]FakeContainer(nil), d.containers...)
	d.mu.Unlock()

	w.Header().Set("Api-Version", FakeDockerAPIVersion)
	w.Header().Set("Ostype", "linux")
	w.Header().Set("Docker-Experimental", "false")
	w.Header().Set("Server", "Docker/27.5.1 (linux)")
	path := r.URL.Path
	if m := versionPrefix.FindStringSubmatch(path); m != nil {
		path = m[1]
	}
	switch {
	case path == "/_ping":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate")
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte("OK"))
		}
	case path == "/version":
		writeDockerJSON(w, http.StatusOK, map[string]any{
			"Version": "27.5.1", "ApiVersion": FakeDockerAPIVersion, "MinAPIVersion": "1.24",
			"Os": "linux", "Arch": "amd64", "KernelVersion": "6.1.0", "GoVersion": "go1.22.11",
			"Components": []map[string]any{{"Name": "Engine", "Version": "27.5.1"}},
		})
	case path == "/info":
		writeDockerJSON(w, http.StatusOK, map[string]any{"ID": "fake", "Containers": len(containers), "OSType": "linux", "ServerVersion": "27.5.1"})
	case path == "/containers/json":
		list := []map[string]any{}
		for _, c := range containers {
			list = append(list, map[string]any{
				"Id": c.ID, "Names": []string{"/" + c.Name}, "Image": c.Name + ":latest", "Labels": c.Labels,
				"State": "running", "Status": "Up 1 minute", "HostConfig": map[string]any{"NetworkMode": "bridge"},
				"NetworkSettings": map[string]any{"Networks": map[string]any{"bridge": dockerNetwork(c)}},
			})
		}
		writeDockerJSON(w, http.StatusOK, list)
	case strings.HasPrefix(path, "/containers/") && strings.HasSuffix(path, "/json"):
		id := strings.TrimSuffix(strings.TrimPrefix(path, "/containers/"), "/json")
		for _, c := range containers {
			if c.ID == id || c.Name == id || strings.HasPrefix(c.ID, id) {
				writeDockerJSON(w, http.StatusOK, map[string]any{
					"Id": c.ID, "Name": "/" + c.Name, "Created": "2026-01-01T00:00:00Z",
					"State":      map[string]any{"Status": "running", "Running": true, "Pid": 4242, "StartedAt": "2026-01-01T00:00:01Z"},
					"HostConfig": map[string]any{"NetworkMode": "bridge"},
					"Config":     map[string]any{"Hostname": c.Name, "Image": c.Name + ":latest", "Labels": c.Labels},
					"NetworkSettings": map[string]any{
						"Ports":    map[string]any{},
						"Networks": map[string]any{"bridge": dockerNetwork(c)},
					},
				})
				return
			}
		}
		writeDockerJSON(w, http.StatusNotFound, map[string]any{"message": "No such container: " + id})
	case path == "/events":
		// A stream that stays open until the client or the env goes away, one JSON message per
		// container event (Stop, Start).
		ch := make(chan []byte, 16)
		d.mu.Lock()
		d.watchers[ch] = true
		d.mu.Unlock()
		defer func() {
			d.mu.Lock()
			delete(d.watchers, ch)
			d.mu.Unlock()
		}()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		f, _ := w.(http.Flusher)
		if f != nil {
			f.Flush()
		}
		for {
			select {
			case msg := <-ch:
				_, _ = w.Write(msg)
				if f != nil {
					f.Flush()
				}
			case <-r.Context().Done():
				return
			case <-d.done:
				return
			}
		}
	default:
		writeDockerJSON(w, http.StatusNotFound, map[string]any{"message": "page not found"})
	}
}

// Watchers is how many /events streams are open (Traefik's provider keeps one).
func (d *FakeDocker) Watchers() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.watchers)
}

// Stop takes a container out of the list and sends a "die" event for it, as Docker does when a
// container stops.
func (d *FakeDocker) Stop(name string) (FakeContainer, bool) {
	d.mu.Lock()
	var gone FakeContainer
	found := false
	for i, c := range d.containers {
		if c.Name == name {
			gone, found = c, true
			d.containers = append(d.containers[:i:i], d.containers[i+1:]...)
			break
		}
	}
	d.mu.Unlock()
	if found {
		d.event(gone, "die")
	}
	return gone, found
}

// Start adds a container and sends its "start" event.
func (d *FakeDocker) Start(c FakeContainer) {
	d.mu.Lock()
	d.containers = append(d.containers, c)
	d.mu.Unlock()
	d.event(c, "start")
}

func (d *FakeDocker) event(c FakeContainer, action string) {
	now := time.Now()
	msg, _ := json.Marshal(map[string]any{
		"status": action, "id": c.ID, "from": c.Name + ":latest", "Type": "container", "Action": action,
		"Actor": map[string]any{"ID": c.ID, "Attributes": map[string]string{"name": c.Name, "image": c.Name + ":latest"}},
		"scope": "local", "time": now.Unix(), "timeNano": now.UnixNano(),
	})
	msg = append(msg, '\n')
	d.mu.Lock()
	defer d.mu.Unlock()
	for ch := range d.watchers {
		select {
		case ch <- msg:
		default:
		}
	}
}

func dockerNetwork(c FakeContainer) map[string]any {
	return map[string]any{"NetworkID": "fakebridge", "EndpointID": "fake-" + c.Name, "Gateway": "", "IPAddress": c.IP, "IPPrefixLen": 8}
}

func writeDockerJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
