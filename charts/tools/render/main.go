// Command render renders a Helm chart as `helm template` does, for the part of Helm that the charts in this
// repository use, so that a machine without helm (CI, the test suite) can render and check them.
//
// It provides .Values (the chart's values.yaml, then every -f file merged over it, as Helm coalesces them),
// .Release (Name, Namespace, Service, IsInstall, IsUpgrade, Revision), .Chart (Name, Version, AppVersion,
// Description, Type), .Template (Name, BasePath), the sprig functions Helm offers (all but env and
// expandenv), and Helm's own include, tpl, required, toYaml, toJson, fromYaml, fromJson and lookup (which,
// as in `helm template`, finds nothing). The merged values are checked against values.schema.json when the
// chart has one. Every rendered document must parse as YAML and name its apiVersion and kind.
//
// Differences from helm, on purpose: documents come out in the order of their template's path (helm sorts
// them by kind), a failing toYaml is an error (helm prints nothing), and subcharts, .Files, .Capabilities
// and --set are not supported: the chart does not use them, and an unsupported field fails the render.
//
// Build it offline with Debian's Go packages (see charts/tools/render/build.sh):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o render ./charts/tools/render
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig" // v3; Debian installs it without the /v3 suffix
	"github.com/xeipuuv/gojsonschema"
	"gopkg.in/yaml.v3"
)

// chartMeta is the part of Chart.yaml that templates may read as .Chart.
type chartMeta struct {
	APIVersion  string `yaml:"apiVersion"`
	Name        string `yaml:"name"`
	Version     string `yaml:"version"`
	AppVersion  string `yaml:"appVersion"`
	Description string `yaml:"description"`
	Type        string `yaml:"type"`
}

type release struct {
	Name      string
	Namespace string
	Service   string
	IsInstall bool
	IsUpgrade bool
	Revision  int
}

type templateInfo struct {
	Name     string
	BasePath string
}

type valueFiles []string

func (v *valueFiles) String() string     { return strings.Join(*v, ",") }
func (v *valueFiles) Set(s string) error { *v = append(*v, s); return nil }

func main() {
	var files valueFiles
	chartDir := flag.String("chart", "", "the chart's directory (required)")
	name := flag.String("name", "release-name", "the release name (.Release.Name)")
	namespace := flag.String("namespace", "default", "the release namespace (.Release.Namespace)")
	includeCrds := flag.Bool("include-crds", false, "print the chart's crds/ files first, as `helm template --include-crds` does")
	notes := flag.Bool("notes", false, "print the rendered NOTES.txt instead of the manifests")
	flag.Var(&files, "f", "a values file merged over values.yaml (repeatable, later files win)")
	flag.Parse()
	if *chartDir == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: render -chart DIR [-f values.yaml]... [-name NAME] [-namespace NS] [-include-crds] [-notes]")
		os.Exit(2)
	}

	out, err := render(*chartDir, files, *name, *namespace, *includeCrds, *notes)
	if err != nil {
		fmt.Fprintln(os.Stderr, "render: "+err.Error())
		os.Exit(1)
	}
	os.Stdout.WriteString(out)
}

func render(chartDir string, files []string, name, namespace string, includeCrds, notes bool) (string, error) {
	chart, err := readChart(chartDir)
	if err != nil {
		return "", err
	}

	values, err := readValues(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return "", err
	}
	for _, f := range files {
		user, err := readValues(f)
		if err != nil {
			return "", err
		}
		values = merge(values, user)
	}
	if err := checkSchema(chartDir, values); err != nil {
		return "", err
	}

	root, names, err := parseTemplates(chartDir, chart.Name)
	if err != nil {
		return "", err
	}

	data := map[string]interface{}{
		"Values":  values,
		"Chart":   chart,
		"Release": release{Name: name, Namespace: namespace, Service: "Helm", IsInstall: true, Revision: 1},
	}

	var out strings.Builder
	if includeCrds && !notes {
		if err := writeCrds(&out, chartDir, chart.Name); err != nil {
			return "", err
		}
	}
	for _, n := range names {
		base := filepath.Base(n)
		if strings.HasPrefix(base, "_") || (base == "NOTES.txt") != notes {
			continue
		}
		data["Template"] = templateInfo{Name: n, BasePath: chart.Name + "/templates"}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, n, data); err != nil {
			return "", err
		}
		// With missingkey=zero a missing map key prints "<no value>"; Helm prints nothing for it.
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if notes {
			out.WriteString(text)
			continue
		}
		if err := writeDocuments(&out, n, text); err != nil {
			return "", err
		}
	}
	return out.String(), nil
}

func readChart(dir string) (*chartMeta, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	var c chartMeta
	if err := yaml.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("Chart.yaml: %w", err)
	}
	switch {
	case c.APIVersion != "v2":
		return nil, fmt.Errorf("Chart.yaml: apiVersion must be v2, not %q", c.APIVersion)
	case c.Name == "" || c.Version == "":
		return nil, errors.New("Chart.yaml: name and version are required")
	}
	return &c, nil
}

// readValues reads a YAML values file into the types Helm gives templates: it reads YAML through JSON, so
// numbers are float64 and maps are map[string]interface{}.
func readValues(path string) (map[string]interface{}, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var parsed interface{}
	if err := yaml.Unmarshal(raw, &parsed); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if parsed == nil {
		return map[string]interface{}{}, nil
	}
	asJSON, err := json.Marshal(parsed)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var values map[string]interface{}
	if err := json.Unmarshal(asJSON, &values); err != nil {
		return nil, fmt.Errorf("%s: the top level must be a mapping: %w", path, err)
	}
	return values, nil
}

// merge lays over on base as Helm coalesces a user's values over a chart's: mappings merge key by key, any
// other value replaces, and a null removes the key.
func merge(base, over map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(base))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		if v == nil {
			delete(out, k)
			continue
		}
		bm, baseIsMap := out[k].(map[string]interface{})
		om, overIsMap := v.(map[string]interface{})
		if baseIsMap && overIsMap {
			out[k] = merge(bm, om)
		} else {
			out[k] = v
		}
	}
	return out
}

func checkSchema(chartDir string, values map[string]interface{}) error {
	path := filepath.Join(chartDir, "values.schema.json")
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	result, err := gojsonschema.Validate(gojsonschema.NewBytesLoader(raw), gojsonschema.NewGoLoader(values))
	if err != nil {
		return fmt.Errorf("values.schema.json: %w", err)
	}
	if result.Valid() {
		return nil
	}
	var msg strings.Builder
	msg.WriteString("the values do not meet values.schema.json:")
	for _, e := range result.Errors() {
		fmt.Fprintf(&msg, "\n- %s: %s", e.Field(), e.Description())
	}
	return errors.New(msg.String())
}

// parseTemplates parses every file under templates/ into one set, each named like Helm names it
// (CHART/templates/PATH), and returns the set with the names in path order.
func parseTemplates(chartDir, chartName string) (*template.Template, []string, error) {
	root := template.New("render").Option("missingkey=zero")
	root.Funcs(funcs(root))

	var names []string
	dir := filepath.Join(chartDir, "templates")
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n := chartName + "/templates/" + filepath.ToSlash(rel)
		if _, err := root.New(n).Parse(string(raw)); err != nil {
			return err
		}
		names = append(names, n)
		return nil
	})
	sort.Strings(names)
	return root, names, err
}

func funcs(root *template.Template) template.FuncMap {
	f := sprig.TxtFuncMap()
	// Helm leaves out the two that read the renderer's environment.
	delete(f, "env")
	delete(f, "expandenv")

	depth := 0
	f["include"] = func(name string, data interface{}) (string, error) {
		if depth++; depth > 1000 {
			return "", fmt.Errorf("include %q: nested more than 1000 deep", name)
		}
		defer func() { depth-- }()
		var buf bytes.Buffer
		err := root.ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
	f["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		if _, err := t.New("tpl").Parse(text); err != nil {
			return "", fmt.Errorf("tpl: %w", err)
		}
		var buf bytes.Buffer
		err = t.ExecuteTemplate(&buf, "tpl", data)
		return strings.ReplaceAll(buf.String(), "<no value>", ""), err
	}
	f["required"] = func(message string, v interface{}) (interface{}, error) {
		if s, isString := v.(string); v == nil || (isString && s == "") {
			return nil, errors.New(message)
		}
		return v, nil
	}
	f["toYaml"] = toYaml
	f["toJson"] = func(v interface{}) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	}
	f["fromYaml"] = func(s string) (map[string]interface{}, error) {
		var v map[string]interface{}
		err := yaml.Unmarshal([]byte(s), &v)
		return v, err
	}
	f["fromJson"] = func(s string) (map[string]interface{}, error) {
		var v map[string]interface{}
		err := json.Unmarshal([]byte(s), &v)
		return v, err
	}
	f["lookup"] = func(apiVersion, kind, namespace, name string) map[string]interface{} {
		return map[string]interface{}{}
	}
	return f
}

// toYaml prints a value as block YAML with two-space indentation and no final newline, numbers that are
// whole printed as integers (values hold every number as a float64).
func toYaml(v interface{}) (string, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(wholeNumbers(v)); err != nil {
		return "", fmt.Errorf("toYaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

func wholeNumbers(v interface{}) interface{} {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x)
		}
	case map[string]interface{}:
		out := make(map[string]interface{}, len(x))
		for k, e := range x {
			out[k] = wholeNumbers(e)
		}
		return out
	case []interface{}:
		out := make([]interface{}, len(x))
		for i, e := range x {
			out[i] = wholeNumbers(e)
		}
		return out
	}
	return v
}

var separator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// writeDocuments prints each non-blank document of a rendered template under a `# Source:` comment, as
// helm does, after checking that it parses and names its apiVersion and kind.
func writeDocuments(out io.StringWriter, source, text string) error {
	for _, doc := range separator.Split(text, -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var head struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			return fmt.Errorf("%s: the rendered document is not YAML: %w\n%s", source, err, doc)
		}
		if head.APIVersion == "" || head.Kind == "" {
			return fmt.Errorf("%s: a rendered document has no apiVersion or kind:\n%s", source, doc)
		}
		out.WriteString("---\n# Source: " + source + "\n" + strings.Trim(doc, "\n") + "\n")
	}
	return nil
}

func writeCrds(out io.StringWriter, chartDir, chartName string) error {
	paths, err := filepath.Glob(filepath.Join(chartDir, "crds", "*.yaml"))
	if err != nil {
		return err
	}
	sort.Strings(paths)
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := writeDocuments(out, chartName+"/crds/"+filepath.Base(p), string(raw)); err != nil {
			return err
		}
	}
	return nil
}
