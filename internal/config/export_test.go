package config

import (
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// FileKeys lists every key the configuration file takes, as dotted paths without list indices
// ("syncs.rds.cluster"), for tests that check documents against the schema.
func FileKeys() []string {
	var keys []string
	unmarshaler := reflect.TypeFor[yaml.Unmarshaler]()
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("yaml")
			if tag == "" || tag == "-" {
				continue
			}
			p := strings.TrimPrefix(path+"."+tag, ".")
			keys = append(keys, p)
			ft := f.Type
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(unmarshaler) {
				walk(ft, p)
			}
		}
	}
	walk(reflect.TypeFor[fileConfig](), "")
	return keys
}
