package accessproxy

import "net/http"

// serveGraphQL guards Strapi's GraphQL endpoint (graphqlPath). Until the guard is complete it
// refuses every request there: fail closed.
func (m *Middleware) serveGraphQL(rw http.ResponseWriter, req *http.Request) {
	writeError(rw, http.StatusForbidden, "GraphQL is not available through the access proxy")
}
