module github.com/strapi-access-proxy/accessproxy/tools/deploycheck

go 1.24

require (
	github.com/mitchellh/mapstructure v1.5.1-0.20231216201459-8508981c8b6c
	github.com/traefik/yaegi v0.16.1
	gopkg.in/yaml.v3 v3.0.1
)

replace github.com/strapi-access-proxy/accessproxy => ../..
