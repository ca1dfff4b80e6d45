#!/usr/bin/env bats
# --format Go templates: the same template run by podman / skopeo and by berth over the same
# image (and the same created container) prints the same thing; a template that fails in the
# peer fails in berth.  Issue 13 item 1.
#
# Each list below is one template per line; '#' lines are comments.  "ERR" before a template means
# the peer fails on it (berth must fail too, stdout is not compared).

load ../helpers/common

# images: podman images --format T over localhost/busybox:1 and docker.io/library/bb:2 (one
# labeled image under two names)
IMAGES_TEMPLATES=$(
    cat <<'EOF'
{{.ID}}
{{.Id}}
{{.Repository}}
{{.Tag}}
{{.Repository}}:{{.Tag}}
{{.Digest}}
{{.Names}}
{{.RepoTags}}
{{.RepoDigests}}
{{.Labels}}
{{.Size}}
{{.VirtualSize}}
{{.SharedSize}}
{{.Containers}}
{{.ReadOnly}}
{{.Dangling}}
{{.IsReadOnly}}
{{.ParentId}}
{{.History}}
{{.Created}}
{{.CreatedSince}}
{{.CreatedAt}}
{{.CreatedTime}}
{{.Labels.maintainer}}
{{index .Labels "org.example.tier"}}
{{.Labels.nope}}|
{{index .Labels "nope"}}|
{{printf "%q" .Labels.nope}}
{{len .Names}}
{{len .Labels}}
{{len .Digest}}
{{index .Names 0}}
{{index .Names 1}}
{{range .Names}}[{{.}}]{{end}}
{{range $i, $n := .Names}}{{$i}}={{$n}} {{end}}
{{range $i, $n := .Names}}{{if $i}},{{end}}{{$n}}{{end}}
{{range $k, $v := .Labels}}{{$k}}={{$v}};{{end}}
{{range .Labels}}{{.}} {{end}}
{{range $n := .Names}}{{$n}};{{else}}none{{end}}
{{range .RepoDigests}}{{index (split . "@") 0}} {{end}}
{{join .Names ","}}
{{join .RepoTags " | "}}
{{upper .Repository}}
{{lower "MiXeD"}} {{lower .Tag}}
{{title .Repository}}
{{truncate .Repository 5}}
{{truncate .Digest 19}}
{{split .Repository "/"}}
{{len (split .Repository "/")}}
{{index (split .Repository "/") 0}}
{{join (split .Repository "/") "+"}}
{{pad .Tag 2 3}}|
{{json .Names}}
{{json .Labels}}
{{json .Tag}}
{{json .Containers}}
{{json .Dangling}}
{{.Repository | printf "%s" | len}}
{{printf "%s:%s" .Repository .Tag | upper}}
{{printf "%-22s|" .Repository}}
{{printf "%22s|" .Repository}}
{{printf "%.5s" .Repository}}
{{printf "%q" .Tag}}
{{printf "%v" .Names}}
{{printf "%q" .Names}}
{{printf "%d %x %X %o %b" .VirtualSize 255 255 8 5}}
{{printf "%05d|%+d|% d|%-5d|" .Containers 5 5 5}}
{{printf "%6.2f|%e|%g" 3.14159 1234.5 0.000012}}
{{printf "%v %v %v %v" 1.0 2.5 1e6 123456.0}}
{{printf "%c%c %U" 72 105 65}}
{{printf "%t %v" true nil}}
{{printf "%T %T %T %T" 1 "a" 1.5 true}}
{{printf "%s"}}
{{printf "%s" 1 2}}
{{printf "%d" .Tag}}
{{printf "%z" 1}}
{{printf "%%"}}
{{print 1 2 "a" "b" 3}}
{{println .Tag "x"}}
{{if eq .Tag "1"}}one{{else if eq .Tag "2"}}two{{else}}other{{end}}
{{if and (eq .Tag "1") (ne .Repository "x")}}both{{end}}
{{if or (eq .Tag "9") (eq .Tag "2")}}either{{else}}neither{{end}}
{{if not .Containers}}no containers{{end}}
{{if .Dangling}}d{{else if .ReadOnly}}r{{else}}neither{{end}}
{{if .Labels.nope}}y{{else}}n{{end}}
{{with .Labels.maintainer}}by {{.}}{{end}}
{{with .Labels.nope}}x{{else}}unset{{end}}
{{with $r := .Repository}}{{$r}}{{end}}
{{$x := .Tag}}{{$x}}-{{$x = "z"}}{{$x}}
{{$a := 1}}{{$b := 2}}{{$a}}{{$b}}{{$a = $b}}{{$a}}
{{and .Tag .Containers}}|{{or .Containers .Tag}}|{{not .Tag}}
{{and 1 0 2}}|{{or 0 "" "x"}}|{{or 0 ""}}|
{{lt 1 2}} {{le 2 2}} {{gt "a" "b"}} {{ge 3 1}} {{ne .Tag "1"}} {{eq 1 2 1}}
{{eq .Containers 0}} {{lt .VirtualSize 1000}} {{gt .VirtualSize 1000}}
{{eq .Labels.nope "a"}}
{{range $i, $e := .Names}}{{if eq $i 1}}{{break}}{{end}}{{$e}}{{end}}
{{range $i, $e := .Names}}{{if eq $i 0}}{{continue}}{{end}}{{$e}}{{end}}
{{.Tag}}  {{/* a comment */}}  x
{{.Tag}}  {{- /* trimmed */ -}}  x
a  {{- .Tag -}}  b
{{- " x " -}}|
{{(index .Names 0)}}|{{(printf "%s-%s" .Tag .Tag) | upper}}
{{1.5}} {{1e2}} {{0x10}} {{'a'}} {{-1}} {{010}}
{{"\u00e9"}} {{`raw`}}
{{.ID}}\t{{.Tag}}
{{.ID}}{{"\t"}}{{.Tag}}
{{.ID}}\n
{{.ID}}\n\n
{{"a\tb" | printf "%q"}}
{{"a\nb" | printf "%q"}}
{{.Tag}}{{"\n"}}
X\tY{{"\n"}}
{{.Tag}}|

a\tb\\t
{{range .}}{{.ID}}{{end}}
{{range .}}{{.Tag}}\n{{end}}
{{ .Tag | }}
table {{.ID}}\t{{.Tag}}
table {{.Repository}} {{.Tag}} {{.ID}} {{.Created}} {{.Size}}
table {{.Repository}}:{{.Tag}}  {{.Size}}
table {{.CreatedSince}} {{.CreatedAt}} {{.Size}} {{.History}} {{.Digest}}
table {{.ReadOnly}} {{.VirtualSize}} {{.SharedSize}} {{.Containers}} {{.Dangling}} {{.Names}} {{.Labels}}
table {{.ParentId}} {{.RepoTags}} {{.RepoDigests}} {{.IsReadOnly}}
table {{len .Names}}
table {{upper .Tag}} {{.Digest}}
table {{printf "%s %s" .ID .Tag}}|
table {{json .Names}}
table {{.ID}}\n
table {{"a b"}} {{.Tag}}
ERR {{.Foo}}
ERR {{foo}}
ERR {{.ID
ERR {{if}}
ERR x{{end}}
ERR {{end}}
ERR {{nil}}
ERR {{eq .Tag 1}}
ERR {{lt .Names 1}}
ERR {{len .Containers}}
ERR {{index .Names 5}}
ERR {{index .Names "a"}}
ERR {{.Names.foo}}
ERR {{.Tag.foo}}
ERR {{"unterminated}}
ERR {{ | .Tag }}
ERR {{}}
ERR {{if .Tag}}a
ERR {{range .Tag}}x{{end}}
ERR {{range .Containers}}x{{end}}
ERR {{$y}}
ERR {{.Tag 1}}
ERR {{"x" 1}}
ERR {{1 | .Tag}}
ERR {{upper 1}}
ERR {{join .Tag ","}}
ERR {{.Digest | truncate 19}}
ERR {{not}}
ERR {{and}}
ERR {{len}}
{{break}}
ERR {{template "x"}}
ERR table {{upper .Tag}} {{.Foo}}
EOF
)

# skopeo inspect --format T over the same image.  skopeo 1.9 has only Go's builtin functions;
# berth's inspect also has podman's (json, upper, join ...), a deliberate superset, so templates
# using them are not in this list.
INSPECT_TEMPLATES=$(
    cat <<'EOF'
{{.Name}}
{{.Tag}}
{{.Digest}}
{{.RepoTags}}
{{.Created}}
{{.DockerVersion}}
{{.Labels}}
{{.Architecture}}
{{.Os}}
{{.Layers}}
{{.Env}}
{{.Name}}|{{.Digest}}|{{.Os}}/{{.Architecture}}
Name: {{.Name}} Digest: {{.Digest}}
{{.Labels.maintainer}}
{{.Labels.nope}}
{{index .Labels "org.example.tier"}}
{{index .Labels "nope"}}|
{{index .Layers 0}}
{{index .Env 0}}
{{len .Layers}}
{{len .Env}}
{{len .Labels}}
{{len .RepoTags}}
{{range .Env}}{{.}};{{end}}
{{range $i, $e := .Env}}{{$i}}:{{$e}} {{end}}
{{range $k, $v := .Labels}}{{$k}}={{$v}} {{end}}
{{range .RepoTags}}{{.}}{{else}}no tags{{end}}
{{range .Layers}}{{printf "%.19s" .}} {{end}}
{{if .Labels}}labeled{{else}}plain{{end}}
{{if eq .Os "linux"}}linux{{else}}other{{end}}
{{if and .Digest (not .DockerVersion)}}oci-ish{{end}}
{{if or .Name .Digest}}named{{end}}
{{with .Labels.maintainer}}m={{.}}{{end}}
{{with .Labels.nope}}x{{else}}none{{end}}
{{$d := .Digest}}{{$d}}
{{printf "%s/%s" .Os .Architecture}}
{{printf "%q" .Os}}
{{printf "%-10s|%5d|" .Os (len .Layers)}}
{{printf "%v" .Env}}
{{print .Os .Architecture}}
{{.Os | printf "%s!" | printf "%q"}}
{{eq (len .Layers) 1}}
{{lt (len .Env) 10}}
{{.Os}}\n
{{.Architecture}}{{.Os}}\n\n
{{ .Os -}}  X
{{- .Os }}
{{/* comment */}}{{.Os}}
{{range $}}{{.Os}}{{end}}
ERR {{.Foo}}
ERR {{.Variant}}
ERR {{index .Layers 3}}
ERR {{range .Os}}{{end}}
ERR {{.Os.Foo}}
ERR {{if}}
ERR {{len .Os 1}}
EOF
)

PS_TEMPLATES=$(
    cat <<'EOF'
{{.Names}}
{{.Image}}
{{.ImageID}}
{{.Command}}
{{.State}}
{{.Status}}
{{.Ports}}
{{.Pod}}|{{.PodName}}
{{.Labels}}
{{.Mounts}}
{{.ExitCode}}
{{.Exited}}
{{.ExitedAt}}
{{.StartedAt}}
{{.AutoRemove}}
{{.IsInfra}}
{{.Pid}}
{{len .ID}}
{{.Names}} {{.Image}} {{.Command}}
{{printf "%s:%s" .Names .Image}}
{{upper .Names}}
{{json .Names}}
{{.Command | printf "%q"}}
{{if eq .State "Created"}}new{{else}}old{{end}}
{{if .Exited}}done{{else}}not done{{end}}
table {{.Names}} {{.Image}} {{.State}}
table {{.Names}}\t{{.Command}}\t{{.ExitCode}}
table {{len .ID}} {{.Names}}
ERR {{.Foo}}
ERR {{.Names.Foo}}
EOF
)

VERSION_TEMPLATES=$(
    cat <<'EOF'
{{.Client.Os}}
{{.Client.OsArch}}
{{.Client.Os}}/{{.Client.OsArch}}
{{.Server}}
{{.Client.GitCommit}}|
{{.Client.Built}}
{{.Client.BuiltTime}}
{{.Os}}
{{.OsArch}}
{{len .Client.Os}}
{{if .Server}}remote{{else}}local{{end}}
{{with .Client}}{{.Os}}{{end}}
ERR {{.Client.Foo}}
EOF
)

# podman system df --format T (containers: berth counts the disk its rw layers use, podman the
# changes in them, so their sizes are left out)
DF_TEMPLATES=$(
    cat <<'EOF'
{{.Type}}
{{.Total}}
{{.Active}}
{{.Type}}|{{.Total}}|{{.Active}}
{{if ne .Type "Containers"}}{{.Size}} {{.Reclaimable}} {{.RawSize}} {{.RawReclaimable}}{{end}}
{{if eq .Type "Images"}}{{printf "%d images, %s" .Total .Size}}{{end}}
{{upper .Type}}
{{len .Type}}
table {{.Type}} {{.Total}} {{.Active}}
table {{.Type}}\t{{if ne .Type "Containers"}}{{.Size}}{{end}}
ERR {{.Foo}}
ERR {{.Type.Foo}}
EOF
)

setup_file() {
    require_root
    skip_unless_cmd podman skopeo python3
    export FMT_DIR=$BATS_FILE_TMPDIR/fmt
    mkdir -p "$FMT_DIR"
    make_busybox_oci_layout "$FMT_DIR/plain" >/dev/null
    # the harness image plus labels (and a second Env entry), as a new OCI layout
    python3 - "$FMT_DIR/plain" "$FMT_DIR/oci" <<'EOF'
import hashlib, json, os, shutil, sys
src, dst = sys.argv[1], sys.argv[2]
shutil.copytree(src, dst)
blobs = os.path.join(dst, "blobs", "sha256")
def read(d): return open(os.path.join(blobs, d.split(":")[1]), "rb").read()
def put(b):
    h = hashlib.sha256(b).hexdigest()
    open(os.path.join(blobs, h), "wb").write(b)
    return "sha256:" + h, len(b)
idx = json.load(open(os.path.join(dst, "index.json")))
m = json.loads(read(idx["manifests"][0]["digest"]))
c = json.loads(read(m["config"]["digest"]))
c["config"]["Labels"] = {"maintainer": "berth tests", "org.example.tier": "base", "a.b": "x y"}
c["config"]["Env"].append("GREETING=hello world")
m["config"]["digest"], m["config"]["size"] = put(json.dumps(c, separators=(",", ":")).encode())
d, n = put(json.dumps(m, separators=(",", ":")).encode())
idx["manifests"][0]["digest"], idx["manifests"][0]["size"] = d, n
json.dump(idx, open(os.path.join(dst, "index.json"), "w"))
EOF
    export BERTH_TEST_ROOT=$FMT_DIR/berth-root BERTH_TEST_RUNROOT=$FMT_DIR/berth-run
    export P_ROOT=$FMT_DIR/p-root P_RUN=$FMT_DIR/p-run
    berth copy -q "oci:$FMT_DIR/oci:latest" containers-storage:localhost/busybox:1
    berth tag localhost/busybox:1 docker.io/library/bb:2
    skopeo copy -q "oci:$FMT_DIR/oci:latest" "containers-storage:[vfs@$P_ROOT+$P_RUN]localhost/busybox:1"
    p tag localhost/busybox:1 docker.io/library/bb:2
    p create --name c1 localhost/busybox:1 echo hi >/dev/null
    berth create --name c1 localhost/busybox:1 echo hi >/dev/null
}

teardown_file() {
    p rm -af >/dev/null 2>&1 || true
    harness_cleanup
}

p() {
    podman --root "$P_ROOT" --runroot "$P_RUN" --storage-driver vfs "$@" 2>/dev/null
}

# compare_templates LIST PEER-CMD... -- BERTH-CMD...: runs every template of LIST through both
# commands (the template is the last argument); prints each difference; fails if any.
compare_templates() {
    local list=$1 line tmpl want_err peer_out peer_rc b_out b_rc n=0 bad=0
    shift
    local -a peer=() mine=()
    while [ "$1" != -- ]; do
        peer+=("$1")
        shift
    done
    shift
    mine=("$@")
    while IFS= read -r line; do
        [[ $line == '#'* ]] && continue
        want_err=0
        tmpl=$line
        if [[ $line == 'ERR '* ]]; then
            want_err=1
            tmpl=${line#ERR }
        fi
        n=$((n + 1))
        # "printf x" keeps trailing newlines in the command substitution
        peer_rc=0
        peer_out=$(
            rc=0
            "${peer[@]}" "$tmpl" 2>/dev/null || rc=$?
            printf x
            exit $rc
        ) || peer_rc=$?
        b_rc=0
        b_out=$(
            rc=0
            "${mine[@]}" "$tmpl" 2>"$BATS_TEST_TMPDIR/err" || rc=$?
            printf x
            exit $rc
        ) || b_rc=$?
        if [ "$want_err" = 1 ]; then
            if [ "$peer_rc" = 0 ] || [ "$b_rc" = 0 ]; then
                echo "template '$tmpl': peer status $peer_rc, berth status $b_rc (both must fail)"
                bad=$((bad + 1))
            fi
            continue
        fi
        if [ "$peer_rc" != 0 ] || [ "$b_rc" != 0 ] || [ "$peer_out" != "$b_out" ]; then
            echo "template '$tmpl': peer status $peer_rc, berth status $b_rc"
            echo "--- peer:"
            printf '%s' "${peer_out%x}"
            echo "--- berth:"
            printf '%s' "${b_out%x}"
            cat "$BATS_TEST_TMPDIR/err"
            bad=$((bad + 1))
        fi
    done <<<"$list"
    echo "$n templates, $bad differ"
    [ "$n" -gt 0 ]
    [ "$bad" = 0 ]
}

@test "format: podman images --format and berth images --format print the same" {
    compare_templates "$IMAGES_TEMPLATES" podman --root "$P_ROOT" --runroot "$P_RUN" \
        --storage-driver vfs images --format -- \
        "$BERTH" --root "$BERTH_TEST_ROOT" --runroot "$BERTH_TEST_RUNROOT" images --format
}

@test "format: skopeo inspect --format and berth inspect --format print the same (oci:)" {
    compare_templates "$INSPECT_TEMPLATES" skopeo inspect "oci:$FMT_DIR/oci:latest" --format -- \
        "$BERTH" inspect "oci:$FMT_DIR/oci:latest" --format
}

@test "format: skopeo inspect --format and berth inspect --format print the same (docker://)" {
    registry_start
    skopeo copy -q --dest-tls-verify=false "oci:$FMT_DIR/oci:latest" \
        "docker://$REGISTRY_ADDR/lib/bb:1"
    skopeo copy -q --dest-tls-verify=false "oci:$FMT_DIR/oci:latest" \
        "docker://$REGISTRY_ADDR/lib/bb:2"
    compare_templates "$INSPECT_TEMPLATES" skopeo inspect --tls-verify=false \
        "docker://$REGISTRY_ADDR/lib/bb:1" --format -- \
        "$BERTH" inspect --tls-verify=false "docker://$REGISTRY_ADDR/lib/bb:1" --format
}

@test "format: podman ps -a --format and berth ps -a --format print the same" {
    compare_templates "$PS_TEMPLATES" podman --root "$P_ROOT" --runroot "$P_RUN" \
        --storage-driver vfs ps -a --format -- \
        "$BERTH" --root "$BERTH_TEST_ROOT" --runroot "$BERTH_TEST_RUNROOT" ps -a --format
}

@test "format: podman version --format and berth version --format print the same" {
    compare_templates "$VERSION_TEMPLATES" podman version --format -- "$BERTH" version --format
}

@test "format: podman system df --format and berth system df --format print the same" {
    compare_templates "$DF_TEMPLATES" podman --root "$P_ROOT" --runroot "$P_RUN" \
        --storage-driver vfs system df --format -- \
        "$BERTH" --root "$BERTH_TEST_ROOT" --runroot "$BERTH_TEST_RUNROOT" system df --format
}

@test "format: json and table keep their meaning" {
    run berth images --format json
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | jq -r '.[0].Names[0]')" = localhost/busybox:1 ]
    run berth images --format '{{json .}}'
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | jq -r '.[0].Names[0]')" = localhost/busybox:1 ]
    run berth images --format table
    [ "$status" -eq 0 ]
    [[ ${lines[0]} == REPOSITORY* ]]
    run berth images --format table --noheading
    [ "$status" -eq 0 ]
    [[ ${lines[0]} == localhost/busybox* ]]
    run berth images --noheading --format 'table {{.Repository}}'
    [ "$output" = "$(printf 'localhost/busybox\ndocker.io/library/bb')" ]
    run berth version --format json
    [ "$status" -eq 0 ]
    [ -n "$(echo "$output" | jq -r .version)" ]
    run "$BERTH" inspect --format json "oci:$FMT_DIR/oci:latest"
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | jq -r .Labels.maintainer)" = "berth tests" ]
    run "$BERTH" inspect --raw --format '{{.Os}}' "oci:$FMT_DIR/oci:latest"
    [ "$status" -eq 125 ]
    # errors name the column of the template as the user wrote it
    run berth images --format 'table {{.ID}} {{nope .ID}}'
    [ "$status" -eq 125 ]
    [ "$output" = 'Error: template: 1:17: function "nope" not defined' ]
    run berth ps -a --format '{{.Names}} {{.Nope}}'
    [ "$status" -eq 125 ]
    [ "$output" = "Error: template: 1:14: executing at <.Nope>: can't evaluate field Nope in type containers.psReporter" ]
}
