// Command argocdhealth runs an Argo CD resource health check (health.lua) over the cases of its
// health_test.yaml the way Argo CD runs it, and prints one JSON line per case and mode.
//
//	argocdhealth deploy/argocd/publishing.dev/PublishingBuild
//
// It mirrors Argo CD's util/lua (VM.runLua and VM.ExecuteHealthLua): the interpreter is gopher-lua,
// the one Argo CD embeds; the object is the global `obj`; the script must return a table whose
// `status` is one of Argo CD's health codes (otherwise Unknown, "Lua returned an invalid health
// status"); the script gets 1 s. Each case runs in both of Argo CD's modes:
//   - "custom": a check configured in argocd-cm, without Lua's standard libraries (Argo CD's
//     default for custom checks): only package, base and table are opened. Argo CD also opens a
//     reduced os library; a check that needs it fails here, which is stricter, never looser.
//   - "builtin": a check bundled in Argo CD (or with resource.customizations.useOpenLibs), all
//     standard libraries opened.
//
// Exit status: 0 when every case gave its expected status and message, 1 otherwise, 2 on misuse.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"
)

type healthStatus struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

type testFile struct {
	Tests []struct {
		InputPath    string       `json:"inputPath"`
		HealthStatus healthStatus `json:"healthStatus"`
	} `json:"tests"`
}

type result struct {
	InputPath string        `json:"inputPath"`
	Mode      string        `json:"mode"`
	Expected  healthStatus  `json:"expected"`
	Actual    *healthStatus `json:"actual,omitempty"`
	Error     string        `json:"error,omitempty"`
	Passed    bool          `json:"passed"`
}

var validStatuses = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true, "Suspended": true, "Missing": true, "Unknown": true,
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: argocdhealth <directory with health.lua and health_test.yaml>")
		os.Exit(2)
	}
	dir := os.Args[1]
	script, err := os.ReadFile(filepath.Join(dir, "health.lua"))
	check(err)
	raw, err := os.ReadFile(filepath.Join(dir, "health_test.yaml"))
	check(err)
	var tests testFile
	check(yaml.UnmarshalStrict(raw, &tests))
	if len(tests.Tests) == 0 {
		fmt.Fprintln(os.Stderr, "health_test.yaml has no tests")
		os.Exit(2)
	}
	failed := 0
	out := json.NewEncoder(os.Stdout)
	for _, test := range tests.Tests {
		input, err := os.ReadFile(filepath.Join(dir, test.InputPath))
		check(err)
		obj := map[string]interface{}{}
		check(yaml.Unmarshal(input, &obj))
		for _, mode := range []string{"custom", "builtin"} {
			r := result{InputPath: test.InputPath, Mode: mode, Expected: test.HealthStatus}
			actual, err := executeHealthLua(obj, string(script), mode == "builtin")
			if err != nil {
				r.Error = err.Error()
			} else {
				r.Actual = actual
				r.Passed = *actual == test.HealthStatus
			}
			if !r.Passed {
				failed++
			}
			check(out.Encode(r))
		}
	}
	fmt.Printf("%d passed, %d failed\n", 2*len(tests.Tests)-failed, failed)
	if failed > 0 {
		os.Exit(1)
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}

// executeHealthLua is Argo CD's VM.runLua followed by VM.ExecuteHealthLua.
func executeHealthLua(obj map[string]interface{}, script string, useOpenLibs bool) (*healthStatus, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: !useOpenLibs})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", decodeValue(l, obj))
	if err := l.DoString(script); err != nil {
		return nil, err
	}
	table, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return nil, fmt.Errorf("expect table output from Lua script, not %s", l.Get(-1).Type().String())
	}
	status, err := stringField(table, "status")
	if err != nil {
		return nil, err
	}
	message, err := stringField(table, "message")
	if err != nil {
		return nil, err
	}
	if !validStatuses[status] {
		return &healthStatus{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return &healthStatus{Status: status, Message: message}, nil
}

// stringField reads a field as Argo CD's JSON round trip into HealthStatus would: absent is "",
// anything but a string is an error.
func stringField(table *lua.LTable, name string) (string, error) {
	switch value := table.RawGetString(name).(type) {
	case *lua.LNilType:
		return "", nil
	case lua.LString:
		return string(value), nil
	default:
		return "", fmt.Errorf("health %s is a Lua %s, not a string", name, value.Type().String())
	}
}

// decodeValue is Argo CD's conversion of the unstructured object into Lua values.
func decodeValue(l *lua.LState, value interface{}) lua.LValue {
	switch converted := value.(type) {
	case bool:
		return lua.LBool(converted)
	case float64:
		return lua.LNumber(converted)
	case int64:
		return lua.LNumber(converted)
	case string:
		return lua.LString(converted)
	case []interface{}:
		arr := l.CreateTable(len(converted), 0)
		for _, item := range converted {
			arr.Append(decodeValue(l, item))
		}
		return arr
	case map[string]interface{}:
		tbl := l.CreateTable(0, len(converted))
		for key, item := range converted {
			tbl.RawSetH(lua.LString(key), decodeValue(l, item))
		}
		return tbl
	}
	return lua.LNil
}
