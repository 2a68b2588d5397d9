// The Argo CD health-check harness (main.go): gopher-lua, the Lua interpreter Argo CD embeds.
module publishing.dev/tests/tools/argocdhealth

go 1.26.0

require (
	github.com/yuin/gopher-lua v1.1.2
	sigs.k8s.io/yaml v1.6.0
)

require go.yaml.in/yaml/v2 v2.4.2 // indirect
