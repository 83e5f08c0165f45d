module github.com/strapi-access-proxy/accessproxy

go 1.22
