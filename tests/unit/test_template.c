/* Unit tests for common/template: Go text/template as podman's --format runs it.
 *
 * The table's expected outputs were produced by podman 4.3.1 (`podman images --format T`) over
 * an image with the same fields as the fixture below (three names: one item per
 * repository:tag); NULL means podman failed (exit 125). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/cleanup.h"
#include "common/strutil.h"
#include "common/template.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char item_json[] =
    "{\"\\u0001type\":\"images.imageReporter\",\"Id\":"
    "\"a909996e18bc66076f73e049dfcb0e4be98e479d5f3c91d"
    "85df8a02491143e96\",\"ParentId\":\"\",\"RepoTags\":[\"localhost/tmp/tpl/"
    "oci:latest\",\"localhost/bus"
    "ybox:1\",\"docker.io/library/bb:2\"],\"RepoDigests\":[\"docker.io/library/"
    "bb@sha256:48999bd0ba66"
    "f8d277949f5829d3347258f3b519f1e9102f26d004f936d76ceb\",\"localhost/busybox@sha256:48999bd0ba"
    "66f8d277949f5829d3347258f3b519f1e9102f26d004f936d76ceb\",\"localhost/tmp/tpl/oci@sha256:4899"
    "9bd0ba66f8d277949f5829d3347258f3b519f1e9102f26d004f936d76ceb\"],\"SharedSize\":0,\"VirtualSize"
    "\":2141373,\"Labels\":{\"\\u0001type\":\"\"},\"Containers\":0,\"ReadOnly\":false,\"Dangling\":"
    "false,\"Nam"
    "es\":[\"localhost/tmp/tpl/oci:latest\",\"localhost/busybox:1\",\"docker.io/library/"
    "bb:2\"],\"Diges"
    "t\":\"sha256:48999bd0ba66f8d277949f5829d3347258f3b519f1e9102f26d004f936d76ceb\",\"History\":"
    "\"do"
    "cker.io/library/bb:2, localhost/busybox:1, localhost/tmp/tpl/oci:latest\",\"Created\":\"56 yea"
    "rs ago\",\"CreatedAt\":\"1970-01-01 00:00:00 +0000 UTC\",\"CreatedSince\":\"56 years "
    "ago\",\"Created"
    "Time\":\"1970-01-01 00:00:00 +0000 UTC\",\"Size\":\"2.14 "
    "MB\",\"ID\":\"a909996e18bc\",\"IsReadOnly\":fa"
    "lse}";

static const char headers_json[] =
    "{\"ID\":\"IMAGE ID\",\"Repository\":\"REPOSITORY\",\"Tag\":\"TAG\",\"Digest\":\"DIGEST\","
    "\"Created\":\"CREATED\",\"Size\":\"SIZE\",\"ReadOnly\":\"R/O\",\"VirtualSize\":\"VIRTUAL "
    "SIZE\",\"SharedSize\":\"SHARED SIZE\",\"Containers\":\"CONTAINERS\",\"Dangling\":\"DANGLING\","
    "\"Names\":\"NAMES\",\"Labels\":\"LABELS\",\"History\":\"HISTORY\",\"ParentId\":\"PARENT ID\","
    "\"RepoTags\":\"REPO TAGS\",\"RepoDigests\":\"REPO DIGESTS\"}";

static const struct {
    const char *tmpl;
    const char *want; /* NULL: an error */
} cases[] = {
    {"{{.ID}}", "a909996e18bc\na909996e18bc\na909996e18bc\n"},
    {"{{.Id}}", "a909996e18bc66076f73e049dfcb0e4be98e479d5f3c91d85df8a02491143e96\na909996e18bc6607"
                "6f73e049dfcb0e4be98e479d5f3c91d85df8a02491143e96\na909996e18bc66076f73e049dfcb0e4b"
                "e98e479d5f3c91d85df8a02491143e96\n"},
    {"{{.Repository}}|{{.Tag}}",
     "localhost/tmp/tpl/oci|latest\nlocalhost/busybox|1\ndocker.io/library/bb|2\n"},
    {"{{.Names}}", "[localhost/tmp/tpl/oci:latest localhost/busybox:1 "
                   "docker.io/library/bb:2]\n[localhost/tmp/tpl/oci:latest localhost/busybox:1 "
                   "docker.io/library/bb:2]\n[localhost/tmp/tpl/oci:latest localhost/busybox:1 "
                   "docker.io/library/bb:2]\n"},
    {"{{.Labels}}", "map[]\nmap[]\nmap[]\n"},
    {"{{.History}}", "docker.io/library/bb:2, localhost/busybox:1, "
                     "localhost/tmp/tpl/oci:latest\ndocker.io/library/bb:2, localhost/busybox:1, "
                     "localhost/tmp/tpl/oci:latest\ndocker.io/library/bb:2, localhost/busybox:1, "
                     "localhost/tmp/tpl/oci:latest\n"},
    {"{{.Foo}}", NULL},
    {"{{index .Labels \"x\"}}|", "|\n|\n|\n"},
    {"{{.Labels.x}}|", "<no value>|\n<no value>|\n<no value>|\n"},
    {"{{printf \"%q\" .Labels.x}}", "%!q(<nil>)\n%!q(<nil>)\n%!q(<nil>)\n"},
    {"{{len .Names}}", "3\n3\n3\n"},
    {"{{range .Names}}[{{.}}]{{end}}",
     "[localhost/tmp/tpl/oci:latest][localhost/busybox:1][docker.io/library/bb:2]\n[localhost/tmp/"
     "tpl/oci:latest][localhost/busybox:1][docker.io/library/bb:2]\n[localhost/tmp/tpl/"
     "oci:latest][localhost/busybox:1][docker.io/library/bb:2]\n"},
    {"{{range $i,$e := .Names}}{{$i}}={{$e}} {{end}}",
     "0=localhost/tmp/tpl/oci:latest 1=localhost/busybox:1 2=docker.io/library/bb:2 "
     "\n0=localhost/tmp/tpl/oci:latest 1=localhost/busybox:1 2=docker.io/library/bb:2 "
     "\n0=localhost/tmp/tpl/oci:latest 1=localhost/busybox:1 2=docker.io/library/bb:2 \n"},
    {"{{join .Names \",\"}}",
     "localhost/tmp/tpl/oci:latest,localhost/busybox:1,docker.io/library/bb:2\nlocalhost/tmp/tpl/"
     "oci:latest,localhost/busybox:1,docker.io/library/bb:2\nlocalhost/tmp/tpl/"
     "oci:latest,localhost/busybox:1,docker.io/library/bb:2\n"},
    {"{{upper .Repository}}", "LOCALHOST/TMP/TPL/OCI\nLOCALHOST/BUSYBOX\nDOCKER.IO/LIBRARY/BB\n"},
    {"{{title .Repository}}", "Localhost/Tmp/Tpl/Oci\nLocalhost/Busybox\nDocker.Io/Library/Bb\n"},
    {"{{truncate .Repository 5}}", "local\nlocal\ndocke\n"},
    {"{{split .Repository \"/\"}}",
     "[localhost tmp tpl oci]\n[localhost busybox]\n[docker.io library bb]\n"},
    {"{{.ID}}\\t{{.Tag}}", "a909996e18bc\tlatest\na909996e18bc\t1\na909996e18bc\t2\n"},
    {"{{.ID}}{{\"\\t\"}}{{.Tag}}", "a909996e18bc\tlatest\na909996e18bc\t1\na909996e18bc\t2\n"},
    {"{{foo}}", NULL},
    {"{{.ID", NULL},
    {"{{if}}", NULL},
    {"x{{end}}", NULL},
    {"{{printf \"%-10s|%5d|%v|%x\" .Tag .Containers .Names .Containers}}",
     "latest    |    0|[localhost/tmp/tpl/oci:latest localhost/busybox:1 "
     "docker.io/library/bb:2]|0\n1         |    0|[localhost/tmp/tpl/oci:latest "
     "localhost/busybox:1 docker.io/library/bb:2]|0\n2         |    "
     "0|[localhost/tmp/tpl/oci:latest localhost/busybox:1 docker.io/library/bb:2]|0\n"},
    {"{{nil}}", NULL},
    {"{{ .Tag | printf \"%q\" }}", "\"latest\"\n\"1\"\n\"2\"\n"},
    {"{{json .Names}}", "[\"localhost/tmp/tpl/oci:latest\",\"localhost/busybox:1\",\"docker.io/"
                        "library/bb:2\"]\n[\"localhost/tmp/tpl/oci:latest\",\"localhost/"
                        "busybox:1\",\"docker.io/library/bb:2\"]\n[\"localhost/tmp/tpl/"
                        "oci:latest\",\"localhost/busybox:1\",\"docker.io/library/bb:2\"]\n"},
    {"{{json .Labels}}", "null\nnull\nnull\n"},
    {"{{if eq .Tag \"1\"}}one{{else if eq .Tag \"2\"}}two{{else}}other{{end}}",
     "other\none\ntwo\n"},
    {"{{with .Labels}}L{{else}}noL{{end}}", "noL\nnoL\nnoL\n"},
    {"{{with .Names}}{{index . 1}}{{end}}",
     "localhost/busybox:1\nlocalhost/busybox:1\nlocalhost/busybox:1\n"},
    {"{{$x := .Tag}}{{$x}}-{{$x = \"z\"}}{{$x}}", "latest-z\n1-z\n2-z\n"},
    {"{{range $n := .Names}}{{$n}};{{else}}none{{end}}",
     "localhost/tmp/tpl/oci:latest;localhost/busybox:1;docker.io/library/bb:2;\nlocalhost/tmp/tpl/"
     "oci:latest;localhost/busybox:1;docker.io/library/bb:2;\nlocalhost/tmp/tpl/"
     "oci:latest;localhost/busybox:1;docker.io/library/bb:2;\n"},
    {"{{range .Labels}}x{{else}}nolabels{{end}}", "nolabels\nnolabels\nnolabels\n"},
    {"{{and .Tag .Containers}}|{{or .Containers .Tag}}|{{not .Tag}}",
     "0|latest|false\n0|1|false\n0|2|false\n"},
    {"{{lt 1 2}} {{le 2 2}} {{gt \"a\" \"b\"}} {{ge 3 1}} {{ne .Tag \"1\"}} {{eq 1 2 1}}",
     "true true false true true true\ntrue true false true false true\ntrue true false true true "
     "true\n"},
    {"{{eq .Tag 1}}", NULL},
    {"{{lt .Names 1}}", NULL},
    {"{{printf \"%d\" .Tag}}", "%!d(string=latest)\n%!d(string=1)\n%!d(string=2)\n"},
    {"{{printf \"%s\"}}", "%!s(MISSING)\n%!s(MISSING)\n%!s(MISSING)\n"},
    {"{{printf \"%s\" 1 2}}",
     "%!s(int=1)%!(EXTRA int=2)\n%!s(int=1)%!(EXTRA int=2)\n%!s(int=1)%!(EXTRA int=2)\n"},
    {"{{printf \"%5.2f|%x|%X|%o|%b|%c|%U|%e|%g\" 3.14159 255 255 8 5 65 65 1234.5 0.000012}}",
     " 3.14|ff|FF|10|101|A|U+0041|1.234500e+03|1.2e-05\n "
     "3.14|ff|FF|10|101|A|U+0041|1.234500e+03|1.2e-05\n "
     "3.14|ff|FF|10|101|A|U+0041|1.234500e+03|1.2e-05\n"},
    {"{{printf \"%08.3f|%+d|% d|%-5d|%05d\" 3.14159 5 5 5 -5}}",
     "0003.142|+5| 5|5    |-0005\n0003.142|+5| 5|5    |-0005\n0003.142|+5| 5|5    |-0005\n"},
    {"{{printf \"%v %v %v %v\" 1.0 2.5 1e6 123456.0}}",
     "1 2.5 1e+06 123456\n1 2.5 1e+06 123456\n1 2.5 1e+06 123456\n"},
    {"{{print 1 2 \"a\" \"b\" 3}}", "1 2ab3\n1 2ab3\n1 2ab3\n"},
    {"{{println 1 \"a\"}}", "1 a\n\n1 a\n\n1 a\n\n"},
    {"{{printf \"%T %T %T %T %T\" 1 \"a\" 1.5 true .Names}}",
     "int string float64 bool []string\nint string float64 bool []string\nint string float64 bool "
     "[]string\n"},
    {"{{printf \"%q\" .Names}}",
     "[\"localhost/tmp/tpl/oci:latest\" \"localhost/busybox:1\" "
     "\"docker.io/library/bb:2\"]\n[\"localhost/tmp/tpl/oci:latest\" \"localhost/busybox:1\" "
     "\"docker.io/library/bb:2\"]\n[\"localhost/tmp/tpl/oci:latest\" \"localhost/busybox:1\" "
     "\"docker.io/library/bb:2\"]\n"},
    {"{{printf \"%10s|%-10s|%.3s\" \"abc\" \"abc\" \"abcdef\"}}",
     "       abc|abc       |abc\n       abc|abc       |abc\n       abc|abc       |abc\n"},
    {"{{printf \"%x\" \"hi\"}}", "6869\n6869\n6869\n"},
    {"{{printf \"%t\" true}} {{printf \"%v\" nil}} {{printf \"%d\" nil}}",
     "true <nil> %!d(<nil>)\ntrue <nil> %!d(<nil>)\ntrue <nil> %!d(<nil>)\n"},
    {"{{\"a\\tb\\n\" | printf \"%q\"}}", "\"a\\tb\\n\"\"a\\tb\\n\"\"a\\tb\\n\""},
    {"{{len .Labels}} {{len \"h\303\251llo\"}}", "0 6\n0 6\n0 6\n"},
    {"{{len .Containers}}", NULL},
    {"{{index .Names 5}}", NULL},
    {"{{index .Names 1}}", "localhost/busybox:1\nlocalhost/busybox:1\nlocalhost/busybox:1\n"},
    {"{{index .Names \"a\"}}", NULL},
    {"{{.Names.foo}}", NULL},
    {"{{.Tag.foo}}", NULL},
    {"{{- \" x \" -}}|", " x |\n x |\n x |\n"},
    {"a  {{- .Tag -}}  b", "alatestb\na1b\na2b\n"},
    {"{{/* comment */}}c{{- /* c2 */ -}}  d", "cd\ncd\ncd\n"},
    {"{{(index .Names 0)}}|{{(printf \"%s-%s\" .Tag .Tag) | upper}}",
     "localhost/tmp/tpl/oci:latest|LATEST-LATEST\nlocalhost/tmp/tpl/oci:latest|1-1\nlocalhost/tmp/"
     "tpl/oci:latest|2-2\n"},
    {"{{range $i, $e := .Names}}{{if eq $i 1}}{{break}}{{end}}{{$e}}{{end}}",
     "localhost/tmp/tpl/oci:latest\nlocalhost/tmp/tpl/oci:latest\nlocalhost/tmp/tpl/oci:latest\n"},
    {"{{range $i, $e := .Names}}{{if eq $i 1}}{{continue}}{{end}}{{$e}} {{end}}",
     "localhost/tmp/tpl/oci:latest docker.io/library/bb:2 \nlocalhost/tmp/tpl/oci:latest "
     "docker.io/library/bb:2 \nlocalhost/tmp/tpl/oci:latest docker.io/library/bb:2 \n"},
    {"{{$.Tag}}", NULL},
    {"{{range .Names}}{{$.Tag}}{{end}}", NULL},
    {"{{\"unterminated}}", NULL},
    {"{{ .Tag | }}", "latest\n1\n2\n"},
    {"{{ | .Tag }}", NULL},
    {"{{}}", NULL},
    {"{{else}}", ""},
    {"{{end}}", NULL},
    {"{{if .Tag}}a", NULL},
    {"{{range .Tag}}x{{end}}", NULL},
    {"{{range .Containers}}x{{end}}", NULL},
    {"{{with $x := .Tag}}{{$x}}{{end}}", "latest\n1\n2\n"},
    {"{{$y}}", NULL},
    {"{{.Tag 1}}", NULL},
    {"{{\"x\" 1}}", NULL},
    {"{{1 | .Tag}}", NULL},
    {"{{.Tag | upper | lower | title}}", "Latest\n1\n2\n"},
    {"{{split \"a,b,,c\" \",\"}} {{split \"\" \",\"}} {{split \"abc\" \"\"}}",
     "[a b  c] [] [a b c]\n[a b  c] [] [a b c]\n[a b  c] [] [a b c]\n"},
    {"{{title \"hello wOrld foo-bar_baz\"}}",
     "Hello WOrld Foo-Bar_baz\nHello WOrld Foo-Bar_baz\nHello WOrld Foo-Bar_baz\n"},
    {"{{truncate \"abc\" 10}}|{{truncate \"abcdef\" 0}}|", "abc||\nabc||\nabc||\n"},
    {"{{upper 1}}", NULL},
    {"{{join .Tag \",\"}}", NULL},
    {"{{json \"a\\\"b<>&\"}}", "\"a\\\"b<>&\"\n\"a\\\"b<>&\"\n\"a\\\"b<>&\"\n"},
    {"{{json 1.5}} {{json true}} {{json nil}}", "1.5 true null\n1.5 true null\n1.5 true null\n"},
    {"{{'a'}} {{0x1F}} {{1e3}} {{-5}} {{010}} {{1_000}}",
     "97 31 1000 -5 8 1000\n97 31 1000 -5 8 1000\n97 31 1000 -5 8 1000\n"},
    {"{{printf \"%s\" 'x'}}", "%!s(int=120)\n%!s(int=120)\n%!s(int=120)\n"},
    {"{{pad \"x\" 2 3}}|", "  x   |\n  x   |\n  x   |\n"},
    {"{{.Containers | printf \"%03d\"}}", "000\n000\n000\n"},
    {"{{eq .Labels.x \"a\"}}", "false\nfalse\nfalse\n"},
    {"{{if .Labels.x}}y{{else}}n{{end}}", "n\nn\nn\n"},
    {"{{.Labels.x.y}}", "<no value>\n<no value>\n<no value>\n"},
    {"{{index .Labels}}", "map[]\nmap[]\nmap[]\n"},
    {"{{not}}", NULL},
    {"{{and}}", NULL},
    {"{{len}}", NULL},
    {"{{len 1 2}}", NULL},
    {"{{define \"x\"}}{{end}}", NULL},
    {"{{template \"x\"}}", NULL},
    {"{{.ID}}\\n", "a909996e18bc\na909996e18bc\na909996e18bc\n"},
    {"{{.ID}}\\n\\n", "a909996e18bc\n\na909996e18bc\n\na909996e18bc\n\n"},
    {"", "\n\n\n"},
    {" ", " \n \n \n"},
    {"a\\tb\\\\t", "a\tb\\\t\na\tb\\\t\na\tb\\\t\n"},
    {"table {{.ID}}\\t{{.Tag}}",
     "IMAGE ID      TAG\na909996e18bc  latest\na909996e18bc  1\na909996e18bc  2\n"},
    {"table {{.Repository}}:{{.Tag}}  {{.Size}}",
     "REPOSITORY:TAG                            SIZE\nlocalhost/tmp/tpl/oci:latest              "
     "2.14 MB\nlocalhost/busybox:1                       2.14 MB\ndocker.io/library/bb:2           "
     "         2.14 MB\n"},
    {"table {{.CreatedSince}} {{.CreatedAt}} {{.Size}} {{.History}} {{.Digest}}",
     "<no value>    <no value>                     SIZE        HISTORY                             "
     "                                       DIGEST\n56 years ago  1970-01-01 00:00:00 +0000 UTC  "
     "2.14 MB     docker.io/library/bb:2, localhost/busybox:1, localhost/tmp/tpl/oci:latest  "
     "sha256:48999bd0ba66f8d277949f5829d3347258f3b519f1e9102f26d004f936d76ceb\n56 years ago  "
     "1970-01-01 00:00:00 +0000 UTC  2.14 MB     docker.io/library/bb:2, localhost/busybox:1, "
     "localhost/tmp/tpl/oci:latest  "
     "sha256:48999bd0ba66f8d277949f5829d3347258f3b519f1e9102f26d004f936d76ceb\n56 years ago  "
     "1970-01-01 00:00:00 +0000 UTC  2.14 MB     docker.io/library/bb:2, localhost/busybox:1, "
     "localhost/tmp/tpl/oci:latest  "
     "sha256:48999bd0ba66f8d277949f5829d3347258f3b519f1e9102f26d004f936d76ceb\n"},
    {"table {{len .Names}}", "5\n3\n3\n3\n"},
    {"table {{printf \"%s %s\" .ID .Tag}}|",
     "IMAGE ID      TAG|\na909996e18bc  latest|\na909996e18bc  1|\na909996e18bc  2|\n"},
    {"table {{json .Names}}",
     "\"NAMES\"\n[\"localhost/tmp/tpl/oci:latest\",\"localhost/busybox:1\",\"docker.io/library/"
     "bb:2\"]\n[\"localhost/tmp/tpl/oci:latest\",\"localhost/busybox:1\",\"docker.io/library/"
     "bb:2\"]\n[\"localhost/tmp/tpl/oci:latest\",\"localhost/busybox:1\",\"docker.io/library/"
     "bb:2\"]\n"},
    {"table {{.ID}}\\n", "IMAGE ID\na909996e18bc\na909996e18bc\na909996e18bc\n"},
    {"{{\"a\\nb\" | printf \"%q\"}}", "\"a\\nb\"\"a\\nb\"\"a\\nb\""},
    {"{{\"\\n\"}}{{.Tag}}", "\nlatest\n1\n2"},
    {"{{.Tag}}{{\"x\\n\"}}", "latestx\n1x\n2x\n"},
    {"X\\tY{{\"\\n\"}}", "X\\tY\nX\\tY\nX\\tY\n"},
    {"{{.Tag}}\\n\"", "latest\n\"\n1\n\"\n2\n\"\n"},
    {"table {{\"a b\"}} {{.Tag}}", "a           b           TAG\na           b           latest\na "
                                   "          b           1\na           b           2\n"},
    {"{{range .}}{{.ID}}{{end}}", "a909996e18bca909996e18bca909996e18bc\n"},
    {"{{range .}}{{.ID}}\\n{{end}}", "a909996e18bc\na909996e18bc\na909996e18bc\n\n"},
    {"{{if and (eq .Tag \"1\") (ne .Repository \"x\")}}both{{end}}", "\nboth\n\n"},
    {"{{if or (eq .Tag \"9\") (eq .Tag \"2\")}}either{{else}}neither{{end}}",
     "neither\nneither\neither\n"},
    {"{{if not .Containers}}zero{{end}}", "zero\nzero\nzero\n"},
    {"{{with $r := .Repository}}{{$r}}{{end}}",
     "localhost/tmp/tpl/oci\nlocalhost/busybox\ndocker.io/library/bb\n"},
    {"{{range $k, $v := .Labels}}{{$k}}={{$v}}{{end}}", "\n\n\n"},
    {"{{len (split .Repository \"/\")}}", "4\n2\n3\n"},
    {"{{index (split .Repository \"/\") 0}}", "localhost\nlocalhost\ndocker.io\n"},
    {"{{(split .Repository \"/\") | len}}", "4\n2\n3\n"},
    {"{{join (split .Repository \"/\") \"+\"}}",
     "localhost+tmp+tpl+oci\nlocalhost+busybox\ndocker.io+library+bb\n"},
    {"{{printf \"%s:%s\" .Repository .Tag | upper}}",
     "LOCALHOST/TMP/TPL/OCI:LATEST\nLOCALHOST/BUSYBOX:1\nDOCKER.IO/LIBRARY/BB:2\n"},
    {"{{printf \"%v\" .VirtualSize}}", "2141373\n2141373\n2141373\n"},
    {"{{printf \"%d\" .VirtualSize}}", "2141373\n2141373\n2141373\n"},
    {"{{printf \"%.1f\" 2.25}}", "2.2\n2.2\n2.2\n"},
    {"{{printf \"%6.2f|%-8.3s|%+.2e\" 1.5 \"abcdef\" 12345.678}}",
     "  1.50|abc     |+1.23e+04\n  1.50|abc     |+1.23e+04\n  1.50|abc     |+1.23e+04\n"},
    {"{{printf \"%q\" 65}}", "'A'\n'A'\n'A'\n"},
    {"{{printf \"%c%c\" 72 105}}", "Hi\nHi\nHi\n"},
    {"{{printf \"%#x %#o\" 255 8}}", "0xff 010\n0xff 010\n0xff 010\n"},
    {"{{printf \"%v|%s\" true false}}",
     "true|%!s(bool=false)\ntrue|%!s(bool=false)\ntrue|%!s(bool=false)\n"},
    {"{{printf \"%%\"}}", "%\n%\n%\n"},
    {"{{printf \"%z\" 1}}", "%!z(int=1)\n%!z(int=1)\n%!z(int=1)\n"},
    {"{{printf \"%\"}}", "%!(NOVERB)\n%!(NOVERB)\n%!(NOVERB)\n"},
    {"{{.Dangling}} {{.ReadOnly}} {{.Containers}} {{.SharedSize}}",
     "false false 0 0\nfalse false 0 0\nfalse false 0 0\n"},
    {"{{if .Dangling}}d{{else if .ReadOnly}}r{{else}}neither{{end}}",
     "neither\nneither\nneither\n"},
    {"{{range .Names}}{{if eq . \"localhost/busybox:1\"}}{{.}}{{end}}{{end}}",
     "localhost/busybox:1\nlocalhost/busybox:1\nlocalhost/busybox:1\n"},
    {"{{range $i, $n := .Names}}{{if $i}},{{end}}{{$n}}{{end}}",
     "localhost/tmp/tpl/oci:latest,localhost/busybox:1,docker.io/library/bb:2\nlocalhost/tmp/tpl/"
     "oci:latest,localhost/busybox:1,docker.io/library/bb:2\nlocalhost/tmp/tpl/"
     "oci:latest,localhost/busybox:1,docker.io/library/bb:2\n"},
    {"{{range .RepoDigests}}{{index (split . \"@\") 1}} {{end}}",
     "sha256:48999bd0ba66f8d277949f5829d3347258f3b519f1e9102f26d004f936d76ceb "
     "sha256:48999bd0ba66f8d277949f5829d3347258f3b519f1e9102f26d004f936d76ceb "
     "sha256:48999bd0ba66f8d277949f5829d3347258f3b519f1e9102f26d004f936d76ceb "
     "\nsha256:48999bd0ba66f8d277949f5829d3347258f3b519f1e9102f26d004f936d76ceb "
     "sha256:48999bd0ba66f8d277949f5829d3347258f3b519f1e9102f26d004f936d76ceb "
     "sha256:48999bd0ba66f8d277949f5829d3347258f3b519f1e9102f26d004f936d76ceb "
     "\nsha256:48999bd0ba66f8d277949f5829d3347258f3b519f1e9102f26d004f936d76ceb "
     "sha256:48999bd0ba66f8d277949f5829d3347258f3b519f1e9102f26d004f936d76ceb "
     "sha256:48999bd0ba66f8d277949f5829d3347258f3b519f1e9102f26d004f936d76ceb \n"},
    {"{{eq .Containers 0}}", "true\ntrue\ntrue\n"},
    {"{{lt .VirtualSize 1000}}", "false\nfalse\nfalse\n"},
    {"{{gt .VirtualSize 1000}}", "true\ntrue\ntrue\n"},
    {"{{le .Tag \"latest\"}}", "true\ntrue\ntrue\n"},
    {"{{ge \"b\" \"a\"}}", "true\ntrue\ntrue\n"},
    {"{{ne 1 2}}", "true\ntrue\ntrue\n"},
    {"{{eq \"a\" \"b\" \"c\" \"a\"}}", "true\ntrue\ntrue\n"},
    {"{{not \"\"}}", "true\ntrue\ntrue\n"},
    {"{{and 1 0 2}}|{{or 0 \"\" \"x\"}}|{{or 0 \"\"}}|", "0|x||\n0|x||\n0|x||\n"},
    {"{{print}}|{{print \"a\" 1 2 \"b\"}}", "|a1 2b\n|a1 2b\n|a1 2b\n"},
    {"{{.Size}} {{.Created}}",
     "2.14 MB 56 years ago\n2.14 MB 56 years ago\n2.14 MB 56 years ago\n"},
    {"{{.Digest | truncate 19}}", NULL},
    {"{{truncate .Digest 19}}", "sha256:48999bd0ba66\nsha256:48999bd0ba66\nsha256:48999bd0ba66\n"},
    {"{{lower \"MiXeD\"}}", "mixed\nmixed\nmixed\n"},
    {"{{title \"hello\"}}", "Hello\nHello\nHello\n"},
    {"{{upper \"\303\237\"}}", "\303\237\n\303\237\n\303\237\n"},
    {"{{.Tag}}  {{/* comment with {{braces}} */}}  x", "latest    x\n1    x\n2    x\n"},
    {"{{- .Tag}}", "latest\n1\n2\n"},
    {"{{.Tag -}}", "latest12"},
    {"  y", "  y\n  y\n  y\n"},
    {"{{1.5}} {{1e2}} {{0x10}} {{'\\n'}} {{-1}}",
     "1.5 100 16 10 -11.5 100 16 10 -11.5 100 16 10 -1"},
    {"{{\"\\u00e9\"}} {{`raw\\n`}}", "\303\251 raw\n\n\303\251 raw\n\n\303\251 raw\n\n"},
    {"{{$a := 1}}{{$b := 2}}{{$a}}{{$b}}{{$a = $b}}{{$a}}", "122\n122\n122\n"},
    {"{{range .Names}}{{$x := .}}{{end}}{{$x}}", NULL},
    {"{{with .Tag}}{{.}}{{end}}{{with \"\"}}x{{else}}empty{{end}}",
     "latestempty\n1empty\n2empty\n"},
    {"{{.Repository | printf \"%s\" | len}}", "21\n17\n20\n"},
    {"{{printf \"%s\" .Repository | len}}", "21\n17\n20\n"},
    {"{{template \"t\"}}", NULL},
    {"{{break}}", ""},
    {"{{range .Names}}{{break 1}}{{end}}", NULL},
    {"{{\"x\"|len}}", "1\n1\n1\n"},
    {"{{(1)}} {{(.Tag)}} {{(\"a\")}}", "1 latest a\n1 1 a\n1 2 a\n"},
    {"{{.Tag | eq \"1\"}}", "false\ntrue\nfalse\n"},
    {"{{json (split .Repository \"/\")}}",
     "[\"localhost\",\"tmp\",\"tpl\",\"oci\"]\n[\"localhost\",\"busybox\"]\n[\"docker.io\","
     "\"library\",\"bb\"]\n"},
    {"{{json 1}} {{json \"x\"}}", "1 \"x\"\n1 \"x\"\n1 \"x\"\n"},
    {"{{index .Names 0 | upper}}",
     "LOCALHOST/TMP/TPL/OCI:LATEST\nLOCALHOST/TMP/TPL/OCI:LATEST\nLOCALHOST/TMP/TPL/OCI:LATEST\n"},
    {"{{range .Names -}} {{.}} {{- end}}",
     "localhost/tmp/tpl/oci:latestlocalhost/busybox:1docker.io/library/bb:2\nlocalhost/tmp/tpl/"
     "oci:latestlocalhost/busybox:1docker.io/library/bb:2\nlocalhost/tmp/tpl/oci:latestlocalhost/"
     "busybox:1docker.io/library/bb:2\n"},
    {"{{if eq .Tag \"latest\"}}{{continue}}{{end}}", "\n\n"},
};

static json_t *items(void)
{
    static const char *const rt[][2] = {{"localhost/tmp/tpl/oci", "latest"},
                                        {"localhost/busybox", "1"},
                                        {"docker.io/library/bb", "2"}};
    json_t *a = json_array();
    for (size_t i = 0; i < 3; i++) {
        json_error_t je;
        json_t *o = json_loads(item_json, 0, &je);
        assert_non_null(o);
        json_object_set_new(o, "Labels", tmpl_nil_map());
        json_object_set_new(o, "Repository", json_string(rt[i][0]));
        json_object_set_new(o, "Tag", json_string(rt[i][1]));
        json_array_append_new(a, o);
    }
    return a;
}

/* Runs a --format over the fixture as podman images does; returns the output or NULL (err set). */
static char *run_report(const char *format, const json_t *data, berth_error_t *err)
{
    tmpl_report_t *r = NULL;
    if (tmpl_report_new(format, &r, err) < 0)
        return NULL;
    json_error_t je;
    json_t *h = json_loads(headers_json, 0, &je);
    int rc = 0;
    if (tmpl_report_is_table(r))
        rc = tmpl_report_headers(r, h, err);
    if (rc == 0)
        rc = tmpl_report_run(r, data, err);
    json_decref(h);
    char *out = NULL;
    if (rc == 0)
        IGNORE_RESULT(tmpl_report_finish(r, &out, err));
    tmpl_report_free(r);
    return out;
}

static void test_table_from_podman(void **state)
{
    (void)state;
    json_t *data = items();
    size_t n = sizeof(cases) / sizeof(cases[0]);
    assert_true(n >= 150);
    for (size_t i = 0; i < n; i++) {
        berth_error_t err = NULL;
        char *got = run_report(cases[i].tmpl, data, &err);
        if (cases[i].want == NULL) {
            if (got != NULL)
                fail_msg("template %s: expected an error, got \"%s\"", cases[i].tmpl, got);
            assert_non_null(err);
            assert_int_equal(strncmp(berth_error_msg(err), "template: ", 10), 0);
        } else {
            if (got == NULL)
                fail_msg("template %s: %s", cases[i].tmpl, berth_error_msg(err));
            if (strcmp(got, cases[i].want) != 0)
                fail_msg("template %s:\n got: \"%s\"\nwant: \"%s\"", cases[i].tmpl, got,
                         cases[i].want);
        }
        free(got);
        berth_error_release(&err);
    }
    json_decref(data);
}

static char *exec1(const char *text, const char *json, berth_error_t *err)
{
    json_error_t je;
    json_t *d = json_loads(json, JSON_DECODE_ANY, &je);
    assert_non_null(d);
    tmpl_t *t = NULL;
    char *out = NULL;
    if (tmpl_parse(text, strlen(text), &t, err) == 0) {
        struct strbuf b = STRBUF_INIT;
        if (tmpl_execute(t, d, &b, err) == 0)
            out = strbuf_steal(&b);
        strbuf_release(&b);
    }
    tmpl_free(t);
    json_decref(d);
    return out;
}

/* Errors name line and column (1-based) of the text the user wrote. */
static void test_error_positions(void **state)
{
    (void)state;
    static const struct {
        const char *tmpl, *msg;
    } e[] = {
        {"{{.ID}} {{foo}}", "template: 1:11: function \"foo\" not defined"},
        {"a\nb {{.ID.Y}}",
         "template: 2:5: executing at <.ID.Y>: can't evaluate field Y in type string"},
        {"{{.ID", "template: 1:6: unclosed action"},
        {"{{if .ID}}x", "template: 1:12: unexpected EOF"},
        {"x{{end}}", "template: 1:4: unexpected {{end}}"},
        {"{{\"abc}}", "template: 1:3: unterminated quoted string"},
        {"{{$x}}", "template: 1:3: undefined variable \"$x\""},
        {"{{index .L 3}}",
         "template: 1:3: executing at <index .L 3>: error calling index: index out of range: 3"},
        {"{{break}}", "template: 1:3: {{break}} outside {{range}}"},
        {"{{/* c", "template: 1:1: unclosed comment"},
        {"{{len 1}}", "template: 1:3: executing at <len 1>: error calling len: len of type int"},
        {"{{.ID 1}}",
         "template: 1:3: executing at <.ID>: ID has arguments but cannot be invoked as function"},
        {"{{printf}}", "template: 1:3: executing at <printf>: wrong number of args for printf: "
                       "want at least 1 got 0"},
    };
    for (size_t i = 0; i < sizeof(e) / sizeof(e[0]); i++) {
        berth_error_t err = NULL;
        char *out = exec1(e[i].tmpl, "{\"ID\":\"x\",\"X\":{\"Y\":1},\"L\":[1]}", &err);
        if (out)
            fail_msg("%s: expected an error, got \"%s\"", e[i].tmpl, out);
        assert_non_null(err);
        if (strcmp(berth_error_msg(err), e[i].msg) != 0)
            fail_msg("%s:\n got: %s\nwant: %s", e[i].tmpl, berth_error_msg(err), e[i].msg);
        berth_error_release(&err);
    }
    /* a report's columns count in the --format as given (not the normalised text) */
    berth_error_t err = NULL;
    json_t *d = json_loads("[{\"a\":1}]", 0, NULL);
    assert_null(run_report("table {{.a}}\\t{{nope}}", d, &err));
    assert_string_equal(berth_error_msg(err), "template: 1:17: function \"nope\" not defined");
    berth_error_release(&err);
    json_decref(d);
}

/* Structs (tmpl_struct_new) reject unknown fields; maps give <no value>. */
static void test_struct_and_map(void **state)
{
    (void)state;
    berth_error_t err = NULL;
    json_t *s = tmpl_struct_new("inspect.T");
    json_object_set_new(s, "Name", json_string("n"));
    json_t *m = json_object();
    json_object_set_new(m, "k", json_string("v"));
    json_object_set_new(s, "Labels", m);
    json_object_set_new(s, "Nil", tmpl_nil_map());
    tmpl_t *t = NULL;
    const char *text = "{{.Name}} {{.Labels.k}} {{.Labels.nope}} {{.}} {{json .}} {{.Nil}} "
                       "{{json .Nil}} {{len .Nil}} {{printf \"%T\" .}}";
    assert_int_equal(tmpl_parse(text, strlen(text), &t, &err), 0);
    struct strbuf b = STRBUF_INIT;
    assert_int_equal(tmpl_execute(t, s, &b, &err), 0);
    assert_string_equal(b.buf,
                        "n v <no value> {n map[k:v] map[]} "
                        "{\"Name\":\"n\",\"Labels\":{\"k\":\"v\"},\"Nil\":null} map[] null 0 "
                        "inspect.T");
    strbuf_release(&b);
    tmpl_free(t);
    text = "{{.Nope}}";
    assert_int_equal(tmpl_parse(text, strlen(text), &t, &err), 0);
    assert_int_equal(tmpl_execute(t, s, &b, &err), -1);
    assert_string_equal(
        berth_error_msg(err),
        "template: 1:3: executing at <.Nope>: can't evaluate field Nope in type inspect.T");
    berth_error_release(&err);
    strbuf_release(&b);
    tmpl_free(t);
    json_decref(s);
}

static void test_bounds(void **state)
{
    (void)state;
    berth_error_t err = NULL;
    tmpl_t *t = NULL;
    /* template length */
    size_t n = TMPL_MAX_TEXT + 1;
    char *big = malloc(n + 1);
    memset(big, 'x', n);
    big[n] = '\0';
    assert_int_equal(tmpl_parse(big, n, &t, &err), -1);
    assert_int_equal(berth_error_status(err), EFBIG);
    berth_error_release(&err);
    free(big);
    /* NUL bytes */
    assert_int_equal(tmpl_parse("a\0b", 3, &t, &err), -1);
    berth_error_release(&err);
    /* nesting of control structures and parentheses */
    struct strbuf b = STRBUF_INIT;
    for (int i = 0; i <= TMPL_MAX_DEPTH; i++)
        strbuf_append(&b, "{{if 1}}");
    for (int i = 0; i <= TMPL_MAX_DEPTH; i++)
        strbuf_append(&b, "{{end}}");
    assert_int_equal(tmpl_parse(b.buf, b.len, &t, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "nesting too deep"));
    berth_error_release(&err);
    strbuf_release(&b);
    strbuf_append(&b, "{{");
    for (int i = 0; i <= TMPL_MAX_DEPTH; i++)
        strbuf_append(&b, "(");
    strbuf_append(&b, "1");
    for (int i = 0; i <= TMPL_MAX_DEPTH; i++)
        strbuf_append(&b, ")");
    strbuf_append(&b, "}}");
    assert_int_equal(tmpl_parse(b.buf, b.len, &t, &err), -1);
    berth_error_release(&err);
    strbuf_release(&b);
    /* output size: pad grows a string past the limit */
    char *out = exec1("{{range .}}{{pad \"x\" 4000000 0}}{{end}}", "[1,2,3,4,5]", &err);
    assert_null(out);
    assert_non_null(strstr(berth_error_msg(err), "output larger than"));
    berth_error_release(&err);
    /* steps: nested ranges that print nothing still stop */
    json_t *arr = json_array();
    for (int i = 0; i < 4000; i++)
        json_array_append_new(arr, json_integer(i));
    char *js = json_dumps(arr, 0);
    out = exec1("{{range .}}{{range $}}{{end}}{{end}}", js, &err);
    assert_null(out);
    assert_non_null(strstr(berth_error_msg(err), "too expensive"));
    berth_error_release(&err);
    free(js);
    json_decref(arr);
}

static void test_tabwriter(void **state)
{
    (void)state;
    char *s = tmpl_tabwrite("A\tB\tC\nlonger cell\tx\t\nshort\n1\t2\n", 12, 2, 1000);
    assert_string_equal(s, "A            B           C\n"
                           "longer cell  x           \n"
                           "short\n"
                           "1           2\n");
    free(s);
    /* the aligned table has a bound too: one wide cell pads every line */
    struct strbuf b = STRBUF_INIT;
    for (int i = 0; i < 3000; i++)
        strbuf_append(&b, "x\ty\n");
    for (int i = 0; i < 10000; i++)
        strbuf_putc(&b, 'w');
    strbuf_append(&b, "\ty\n");
    assert_null(tmpl_tabwrite(b.buf, 12, 2, 1 << 20));
    s = tmpl_tabwrite(b.buf, 12, 2, 1 << 26);
    assert_non_null(s);
    assert_int_equal(strlen(s), 3001 * 10004); /* 3001 lines: 10002-wide cell, "y", newline */
    free(s);
    strbuf_release(&b);
    assert_true(tmpl_format_is_json("json"));
    assert_true(tmpl_format_is_json(" {{ json . }} "));
    assert_true(tmpl_format_is_json("{{json .}}"));
    assert_false(tmpl_format_is_json("{{json .Names}}"));
    assert_false(tmpl_format_is_json("table"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_from_podman), cmocka_unit_test(test_error_positions),
        cmocka_unit_test(test_struct_and_map),    cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_tabwriter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
