package conf

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	yaml "go.yaml.in/yaml/v3"
)

// EnvPrefix starts every environment override: a scalar key k is
// overridden by EnvPrefix + upper(k with "." replaced by "_"), e.g.
// slurm.rest_url by SLURM_ELASTIC_SLURM_REST_URL. See EnvName.
const EnvPrefix = "SLURM_ELASTIC_"

// EnvConfig names the config file when the caller passes no path.
const EnvConfig = "SLURM_ELASTIC_CONFIG"

// FieldError is one problem with one key of one config file. Load and
// Validate return them joined with errors.Join; get them back with
// errors.As or by unwrapping.
type FieldError struct {
	File string // the config file, "" when the Config was built in code
	Key  string // key path, e.g. groups[1].template.image
	Msg  string
}

func (e *FieldError) Error() string {
	if e.File == "" {
		return e.Key + ": " + e.Msg
	}
	return e.File + ": " + e.Key + ": " + e.Msg
}

// Path returns the config file to read: flag when it is not empty (the
// --config flag), else $SLURM_ELASTIC_CONFIG when set, else DefaultPath.
// Never blocks; idempotent.
func Path(flag string) string {
	if flag != "" {
		return flag
	}
	if p := os.Getenv(EnvConfig); p != "" {
		return p
	}
	return DefaultPath
}

// EnvName returns the environment variable that overrides the scalar key
// (a dotted key path such as "log.level" -> "SLURM_ELASTIC_LOG_LEVEL").
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Load reads the YAML config file at Path(path) and returns it with
// defaults applied and cfg.File set. Precedence, highest first: the
// environment (SLURM_ELASTIC_* for every scalar key; lists such as groups
// and podman.hosts come from the file only), the file, Default(). Flags are
// the caller's business and go on top.
//
// Keys whose default follows another key (resume.timeout,
// suspend.timeout, daemon.power_up_limit) are derived by ApplyDefaults
// when unset or 0, from the values in effect after the file and the
// environment: setting only power_save.resume_timeout moves resume.timeout
// along.
//
// Durations are strings with a unit ("90s", "2m"); a bare number is an
// error. Keys are matched case-insensitively (except under
// groups[].template.env, whose keys are kept as written). An unknown key,
// a duplicate key or a value of the wrong type is an error naming the key
// and the file; all such problems are reported at once.
//
// Load does not validate: call Validate on the result. It blocks on reading
// one file and is idempotent.
func Load(path string) (*Config, error) {
	path = Path(path)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return load(path, data)
}

// scalarKey is one key that has a default and an environment override.
type scalarKey struct {
	key   string
	index []int // reflect field index path in Config
}

var scalarKeys = collectScalarKeys(reflect.TypeFor[Config](), "", nil)

var durationType = reflect.TypeFor[time.Duration]()

// collectScalarKeys lists the keys of t whose values are scalars (not
// structs, slices or maps), recursing into nested structs.
func collectScalarKeys(t reflect.Type, prefix string, index []int) []scalarKey {
	var out []scalarKey
	for i := range t.NumField() {
		f := t.Field(i)
		name := tagName(f)
		if name == "" {
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		idx := append(slices.Clone(index), i)
		switch {
		case f.Type == durationType:
			out = append(out, scalarKey{key, idx})
		case f.Type.Kind() == reflect.Struct:
			out = append(out, collectScalarKeys(f.Type, key, idx)...)
		case f.Type.Kind() == reflect.Slice, f.Type.Kind() == reflect.Map:
		default:
			out = append(out, scalarKey{key, idx})
		}
	}
	return out
}

// tagName is the mapstructure key of f, "" when f is not a key.
func tagName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
	if name == "-" {
		return ""
	}
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

func load(path string, data []byte) (*Config, error) {
	return loadWith(path, data, baseDefault())
}

// loadWith is load with the defaults def (baseDefault, or the health
// daemon's variant of it).
func loadWith(path string, data []byte, defaults Config) (*Config, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	def := reflect.ValueOf(defaults)
	for _, k := range scalarKeys {
		v.SetDefault(k.key, def.FieldByIndex(k.index).Interface())
		if err := v.BindEnv(k.key, EnvName(k.key)); err != nil {
			return nil, fmt.Errorf("config %s: bind %s: %w", path, EnvName(k.key), err)
		}
	}
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("config %s: parse YAML: %w", path, err)
	}
	settings := v.AllSettings()

	// Viper lower-cases every map key, also inside lists. Environment
	// variable names under groups[].template.env are case-sensitive, so
	// groups (which has no default and no env override) comes from the
	// file as written.
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("config %s: parse YAML: %w", path, err)
	}
	delete(settings, "groups")
	for k, val := range raw {
		if strings.EqualFold(k, "groups") {
			settings["groups"] = val
		}
	}

	var errs []error
	for _, key := range unknownKeys(reflect.TypeFor[Config](), settings, "") {
		errs = append(errs, &FieldError{File: path, Key: key.path, Msg: key.msg})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	var cfg Config
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result:      &cfg,
		ErrorUnused: true, // belt and braces: unknownKeys should have caught them
		DecodeHook:  mapstructure.ComposeDecodeHookFunc(durationHook, scalarHook),
	})
	if err != nil {
		return nil, fmt.Errorf("config %s: decoder: %w", path, err)
	}
	if err := dec.Decode(settings); err != nil {
		return nil, decodeErrors(path, err)
	}
	cfg.File = path
	cfg.ApplyDefaults()
	return &cfg, nil
}

type unknownKey struct{ path, msg string }

// movedKeys maps keys that moved to another section to their new name: an
// old key is an error that names the new one.
var movedKeys = map[string]string{
	"daemon.breaker_threshold": "breaker.threshold",
	"daemon.breaker_reset":     "breaker.reset",
	"groups.template.gpus":     "groups[].template.gpu_count (GPUs per node) and list each host's devices in podman.hosts[].gpus",
}

// indexRe matches the list indices of a key path ("groups[1]").
var indexRe = regexp.MustCompile(`\[[0-9]+\]`)

// unknownKeys returns the keys of m (recursively) that t has no field for.
func unknownKeys(t reflect.Type, m map[string]any, prefix string) []unknownKey {
	type field struct {
		name string
		typ  reflect.Type
	}
	var fields []field
	for i := range t.NumField() {
		if n := tagName(t.Field(i)); n != "" {
			fields = append(fields, field{n, t.Field(i).Type})
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []unknownKey
	for _, k := range keys {
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		i := slices.IndexFunc(fields, func(f field) bool { return strings.EqualFold(f.name, k) })
		if i < 0 {
			names := make([]string, len(fields))
			for j, f := range fields {
				names[j] = f.name
			}
			msg := "unknown key"
			if to, ok := movedKeys[indexRe.ReplaceAllString(strings.ToLower(path), "")]; ok {
				msg += fmt.Sprintf(" (moved: write %s instead)", to)
			} else if s := closest(strings.ToLower(k), names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			out = append(out, unknownKey{path, msg})
			continue
		}
		ft := fields[i].typ
		switch {
		case ft == durationType:
		case ft.Kind() == reflect.Struct:
			if sub, ok := m[k].(map[string]any); ok {
				out = append(out, unknownKeys(ft, sub, path)...)
			}
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			if list, ok := m[k].([]any); ok {
				for j, item := range list {
					if sub, ok := item.(map[string]any); ok {
						out = append(out, unknownKeys(ft.Elem(), sub, fmt.Sprintf("%s[%d]", path, j))...)
					}
				}
			}
		}
	}
	return out
}

// closest returns the candidate nearest to s by edit distance when it is
// near enough to be a likely typo, else "".
func closest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// durationHook decodes strings such as "90s" into time.Duration and
// refuses bare numbers, which would otherwise be read as nanoseconds.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType {
		return data, nil
	}
	switch d := data.(type) {
	case time.Duration:
		return d, nil
	case string:
		v, err := time.ParseDuration(strings.TrimSpace(d))
		if err != nil {
			return nil, fmt.Errorf("invalid duration %q: write a number with a unit, e.g. \"90s\" or \"2m\"", d)
		}
		return v, nil
	default:
		if from != nil && isNumber(from.Kind()) {
			return nil, fmt.Errorf("duration %v has no unit: write e.g. \"%vs\"", data, data)
		}
		return data, nil
	}
}

func isNumber(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// scalarHook converts strings (environment values) to numbers and
// booleans, and YAML numbers and booleans to strings (env: {N: 4}). It does
// not turn a string into a list or a list into a string.
func scalarHook(from, to reflect.Type, data any) (any, error) {
	if from == nil || to == durationType {
		return data, nil
	}
	if want, got := kindName(to.Kind()), kindName(from.Kind()); (want == "a list" || want == "a mapping" || got == "a list" || got == "a mapping") && want != got {
		return nil, fmt.Errorf("want %s, got %s", want, got)
	}
	if from.Kind() == reflect.String {
		s := strings.TrimSpace(data.(string))
		switch to.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			n, err := strconv.ParseInt(s, 10, to.Bits())
			if err != nil {
				return nil, fmt.Errorf("%q is not an integer", data)
			}
			return n, nil
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			n, err := strconv.ParseUint(s, 10, to.Bits())
			if err != nil {
				return nil, fmt.Errorf("%q is not a non-negative integer", data)
			}
			return n, nil
		case reflect.Float32, reflect.Float64:
			n, err := strconv.ParseFloat(s, to.Bits())
			if err != nil {
				return nil, fmt.Errorf("%q is not a number", data)
			}
			return n, nil
		case reflect.Bool:
			b, err := strconv.ParseBool(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not a boolean (true or false)", data)
			}
			return b, nil
		}
		return data, nil
	}
	if to.Kind() == reflect.String && (isNumber(from.Kind()) || from.Kind() == reflect.Bool) {
		return fmt.Sprint(data), nil
	}
	return data, nil
}

// kindName describes a kind of value the way a YAML author sees it.
func kindName(k reflect.Kind) string {
	switch {
	case k == reflect.Slice || k == reflect.Array:
		return "a list"
	case k == reflect.Map || k == reflect.Struct:
		return "a mapping"
	case k == reflect.String:
		return "a string"
	case k == reflect.Bool:
		return "a boolean"
	case isNumber(k):
		return "a number"
	}
	return k.String()
}

// decodeErrors turns mapstructure's errors into FieldErrors naming the key.
func decodeErrors(path string, err error) error {
	var out []error
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		if de, ok := err.(*mapstructure.DecodeError); ok {
			inner := de.Unwrap()
			var deeper *mapstructure.DecodeError
			if errors.As(inner, &deeper) || isJoined(inner) {
				walk(inner)
				return
			}
			key := de.Name()
			if key == "" {
				key = "(top level)"
			}
			out = append(out, &FieldError{File: path, Key: key, Msg: inner.Error()})
			return
		}
		if u := errors.Unwrap(err); u != nil {
			walk(u)
			return
		}
		out = append(out, fmt.Errorf("config %s: %w", path, err))
	}
	walk(err)
	return errors.Join(out...)
}

func isJoined(err error) bool {
	_, ok := err.(interface{ Unwrap() []error })
	return ok
}
