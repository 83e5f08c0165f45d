module github.com/strapi-access-proxy/accessproxy/e2e

go 1.22
