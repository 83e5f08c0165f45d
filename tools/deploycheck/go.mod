module github.com/strapi-access-proxy/accessproxy/tools/deploycheck

go 1.25

require (
	github.com/mitchellh/mapstructure v1.5.1-0.20231216201459-8508981c8b6c
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.3
	github.com/strapi-access-proxy/accessproxy v0.0.0-00010101000000-000000000000
	github.com/strapi-access-proxy/accessproxy/e2e v0.0.0
	github.com/traefik/yaegi v0.16.1
	gopkg.in/yaml.v3 v3.0.1
)

require golang.org/x/text v0.14.0 // indirect

replace github.com/strapi-access-proxy/accessproxy => ../..

replace github.com/strapi-access-proxy/accessproxy/e2e => ../../e2e
