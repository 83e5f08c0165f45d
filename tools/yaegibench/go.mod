module github.com/strapi-access-proxy/accessproxy/tools/yaegibench

go 1.22

require github.com/traefik/yaegi v0.16.1
