#!/usr/bin/env bash
# Builds .gpu/ffmpeg/: Debian 12's FFmpeg 5.1 for the GPU machine, which has
# neither FFmpeg's libraries nor its headers and cannot download them.
#
# Debian's libav* libraries need some sixty other libraries (codecs, TLS,
# X11, audio servers, ...), about 165 MB in all: too much for the 64 MiB the
# device tool carries. The bundle holds the real libraries Visage uses
# (libavformat, libavcodec, libavdevice, libavutil, libswscale, libswresample,
# libx264 for CPU H.264 encoding, libvpx/libopus/libdav1d) and the few small
# ones they need that have no dependencies of their own; every other library
# they name (DT_NEEDED) is a generated stub with the same SONAME. Debian links
# libav* with BIND_NOW, so each stub defines every symbol the real libraries
# import from it (and the real library's other C symbols and versions), under
# the same symbol version: functions print the symbol's name and abort (a few
# that FFmpeg calls for every codec or probe answer "nothing": see special
# below), data objects are zero-filled with the real object's size. Stubs
# need only libc. FFmpeg reaches these libraries only through the codecs,
# formats and devices that wrap them (libx265, libaom, gnutls for https, xcb
# for screen grabbing), none of which Visage asks for by default; NVDEC/NVENC
# (libcuda, libnvcuvid, libnvidia-encode) are opened with dlopen at run time
# from the driver, not linked.
#
# Layout: lib/ (the libraries, unversioned .so links, pkgconfig/*.pc pointing
# here), include/ (the libav* and libsw* headers), bin/ (ffmpeg, ffprobe). Use it either with
# PKG_CONFIG_PATH=.gpu/ffmpeg/lib/pkgconfig or, where pkg-config is missing,
# cmake -DLIBAV_ROOT=$PWD/.gpu/ffmpeg. At run time put .gpu/ffmpeg/lib on
# LD_LIBRARY_PATH only for Visage's own programs: the stubs would shadow the
# real libraries of other programs (cmake loads libxml2 through libarchive).
#
# Runs on the Debian development machine (needs the libav* packages, gcc,
# binutils, python3). Usage: scripts/gpu_ffmpeg_bundle.sh [out_dir]
# (default .gpu/ffmpeg). scripts/gpu_bundle.sh calls it when VISAGE_GPU_VIDEO=1.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.gpu/ffmpeg}
libdir=/usr/lib/x86_64-linux-gnu
incdir=/usr/include/x86_64-linux-gnu
# Real libraries: FFmpeg's six; the codec libraries Visage's writer and reader
# may pick (libx264: H.264 on the CPU; libvpx, libopus: WebM; libdav1d: AV1
# input, FFmpeg has no software AV1 decoder of its own); small dependencies
# needing only libc/libm (liblzma, libbz2: compressed streams in containers;
# libwebp: also what .gpu/lib carries for still images, so the same file wins
# either way; libdrm).
real=(libavformat.so.59 libavcodec.so.59 libavdevice.so.59 libavutil.so.57 libswscale.so.6 libswresample.so.4
      libx264.so.164 libvpx.so.7 libopus.so.0 libdav1d.so.6 liblzma.so.5 libbz2.so.1.0 libwebp.so.7 libwebpmux.so.3
      libdrm.so.2)
# The ffmpeg and ffprobe programs (the video tests make their clips with
# them) and the libraries they add: libavfilter, libpostproc.
tools=(ffmpeg ffprobe)
real+=(libavfilter.so.8 libpostproc.so.56)
# Libraries every Linux machine has (glibc's own, the compiler runtime, zlib):
# never bundled, so that the machine's newer ones are used.
system=(libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1 ld-linux-x86-64.so.2 libstdc++.so.6 libgcc_s.so.1
        libz.so.1)
modules=(libavformat libavcodec libavdevice libavutil libswscale libswresample)

for lib in "${real[@]}"; do
  [ -e "$libdir/$lib" ] || { echo "missing $libdir/$lib: apt-get install the FFmpeg development packages" >&2; exit 1; }
done
rm -rf "$out"
mkdir -p "$out/lib/pkgconfig" "$out/include"
for lib in "${real[@]}"; do
  cp -L "$libdir/$lib" "$out/lib/"
  strip --strip-unneeded "$out/lib/$lib"
done
mkdir -p "$out/bin"
for tool in "${tools[@]}"; do
  cp -L "/usr/bin/$tool" "$out/bin/"
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 - "$out/lib" "$tmp" "${real[*]}" "${system[*]}" <<'PY'
import os, re, subprocess, sys

out_lib, tmp, real, system = sys.argv[1], sys.argv[2], sys.argv[3].split(), set(sys.argv[4].split())
# Functions FFmpeg calls whatever codec is used get a stub that answers
# "nothing here" instead of aborting (every other function aborts):
# - av_codec_iterate() runs every codec's init_static_data once; libaom's
#   encoder asks for the version and capabilities (0: none), libx265's for the
#   x265 API of 12, 10 and 8 bits (NULL: FFmpeg keeps its default pixel
#   formats). x265_api_get is x265_api_get_<build>; its encoder asks with
#   the depth, then with 0 as the last resort: that call aborts.
# - avformat_open_input() probes every demuxer when no format is given: ""
#   is gme's "unknown format", 0 openmpt's.
# - avformat_network_init() (Visage calls it for streams) initialises GnuTLS:
#   0 is success (https and tls:// then abort when used).
special = [
    (r"aom_codec_version|aom_codec_get_caps|aom_codec_av1_cx|openmpt_probe_file_header.*|gnutls_global_(init|deinit)",
     "long {f}(void) {{ return 0; }}"),
    (r"gme_identify_header", 'const char *{f}(const void *header) {{ return ""; }}'),
    (r"x265_api_get_[0-9]+", 'const void *{f}(int depth) {{ if (depth) return 0; visage_stub_die("{name}"); }}'),
]
search = ["/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib", "/lib"]

def locate(soname):
    for d in search:
        if os.path.exists(os.path.join(d, soname)):
            return os.path.join(d, soname)
    sys.exit(f"cannot find {soname} on this machine (needed to learn its symbols)")

def readelf(*args):
    return subprocess.run(["readelf", "-W", *args], check=True, capture_output=True, text=True).stdout

def needed(path):
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", readelf("-d", path))

def verneed(path):
    """version index -> (file, version name), for the versions this object needs."""
    result, current = {}, None
    text = readelf("-V", path)
    section = text[text.find("Version needs"):] if "Version needs" in text else ""
    for line in section.splitlines():
        m = re.search(r"File: (\S+)", line)
        if m:
            current = m.group(1)
            continue
        m = re.search(r"Name: (\S+)\s+Flags: \S+\s+Version: (\d+)", line)
        if m and current:
            result[int(m.group(2))] = (current, m.group(1))
    return result

sym_re = re.compile(r"^\s*\d+: ([0-9a-f]+)\s+(\d+|0x[0-9a-f]+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(.+)$")

def dynsyms(path):
    """(name, version or None, index or None, size, type, bind, defined) for each dynamic symbol."""
    rows = []
    for line in readelf("--dyn-syms", path).splitlines():
        m = sym_re.match(line)
        if not m or not m.group(7).strip():
            continue
        value, size, typ, bind, vis, ndx, name = m.groups()
        idx = None
        vm = re.match(r"(\S+?)@@?(\S+)(?: \((\d+)\))?$", name.strip())
        if vm:
            name, ver, idx = vm.group(1), vm.group(2), int(vm.group(3)) if vm.group(3) else None
        else:
            name, ver = name.strip(), None
        rows.append((name, ver, idx, int(size, 0), typ, bind, ndx != "UND"))
    return rows

def exports(path):
    """name -> (size, type) of the symbols an object defines."""
    table = {}
    for name, ver, idx, size, typ, bind, defined in dynsyms(path):
        if defined and bind in ("GLOBAL", "WEAK", "UNIQUE") and typ != "SECTION":
            table.setdefault(name, (size, typ))
    return table

def all_exports(path):
    """name -> version (the default one where there are several; None if
    unversioned) of every symbol an object exports, and its version names."""
    text = readelf("-V", path)
    verdefs = set()
    if "Version definition" in text:
        part = text[text.find("Version definition"):]
        part = part[:part.find("Version needs")] if "Version needs" in part else part
        verdefs = set(re.findall(r"Flags: none\s+Index: \d+\s+Cnt: \d+\s+Name: (\S+)", part))
    table = {}
    skip = {"_init", "_fini", "_edata", "_end", "__bss_start", "_DYNAMIC", "_GLOBAL_OFFSET_TABLE_"}
    for line in readelf("--dyn-syms", path).splitlines():
        m = sym_re.match(line)
        if not m or m.group(6) == "UND" or m.group(4) != "GLOBAL":
            continue
        raw = m.group(7).strip()
        name, _, ver = raw.replace("@@", "@").partition("@")
        if name in skip or name in verdefs or not re.fullmatch(r"[A-Za-z_.$][A-Za-z0-9_.$]*", name):
            continue
        if name not in table or "@@" in raw:
            table[name] = ver or None
    return table, verdefs

real_set = set(real)
stubs = []  # stub sonames, in order of discovery
for lib in real:
    for n in needed(os.path.join(out_lib, lib)):
        if n not in real_set and n not in system and n not in stubs:
            stubs.append(n)
stub_exports = {s: exports(locate(s)) for s in stubs}
other_exports = {s: exports(os.path.join(out_lib, s) if s in real_set else locate(s))
                 for s in real_set | system if s in real_set or any(os.path.exists(os.path.join(d, s)) for d in search)}

# What each stub must define: versions (every one our libraries name, even
# if only weak references use it) and symbols with their versions.
want_versions = {s: set() for s in stubs}
want_syms = {s: {} for s in stubs}  # soname -> {name: version or None}
unresolved = []
for lib in real:
    path = os.path.join(out_lib, lib)
    vn = verneed(path)
    for file, ver in vn.values():
        if file in want_versions:
            want_versions[file].add(ver)
    order = needed(path)
    for name, ver, idx, size, typ, bind, defined in dynsyms(path):
        if defined or bind == "WEAK":
            continue  # weak references need no definition, and code tests them for null
        if idx is not None and idx in vn:
            file = vn[idx][0]
            if file in want_syms:
                want_syms[file][name] = vn[idx][1]
            continue
        # Unversioned: the first library in DT_NEEDED order that defines it.
        for n in order:
            table = stub_exports.get(n) or other_exports.get(n) or {}
            if name in table:
                if n in want_syms:
                    want_syms[n].setdefault(name, None)
                break
        else:
            unresolved.append(f"{lib}: {name}")
if unresolved:
    print("warning: imports defined by no library in the closure:", *unresolved, sep="\n  ", file=sys.stderr)

system_names = set()
for s_name in system:
    if s_name in other_exports:
        system_names |= set(other_exports[s_name])
total = 0
for soname in stubs:
    syms = want_syms[soname]
    # Every other symbol and version of the real library too: a library that
    # the stub shadows for another user in the same process (the stubs are on
    # LD_LIBRARY_PATH) then still loads, and aborts only where it calls one.
    # Only its own C names: C++ symbols (template instances of the standard
    # library, typeinfo) and names the system libraries define would be bound
    # by everyone else before the real ones.
    everything, verdefs = all_exports(locate(soname))
    for name, ver in everything.items():
        if not name.startswith("_Z") and name not in system_names:
            syms.setdefault(name, ver)
    versions = sorted(want_versions[soname] | verdefs | {v for v in syms.values() if v})
    table = stub_exports[soname]
    c = [f'/* Stub of {soname} generated by scripts/gpu_ffmpeg_bundle.sh. */',
         '#include <stdlib.h>', '#include <string.h>', '#include <unistd.h>',
         '__attribute__((noreturn, visibility("hidden"))) void visage_stub_die(const char *symbol) {',
         f'  static const char head[] = "visage GPU bundle: {soname} is a stub; called ";',
         '  (void)!write(2, head, sizeof head - 1);',
         '  (void)!write(2, symbol, strlen(symbol));',
         '  (void)!write(2, "\\n", 1);',
         '  abort();', '}']
    for i, name in enumerate(sorted(syms)):
        size, typ = table.get(name, (0, "FUNC"))
        if typ in ("OBJECT", "TLS", "COMMON"):
            tls = "__thread " if typ == "TLS" else ""
            c.append(f'{tls}__attribute__((aligned(16))) char visage_stub_d{i}[{max(size, 1)}] __asm__("{name}");')
            c.append(f'{tls}__attribute__((aligned(16))) char visage_stub_d{i}[{max(size, 1)}];')
        elif any(re.fullmatch(pattern, name) for pattern, _ in special):
            body = next(body for pattern, body in special if re.fullmatch(pattern, name))
            definition = body.format(f=f"visage_stub_f{i}", name=name)
            c.append(definition.split("{")[0].rstrip() + f' __asm__("{name}");')
            c.append(definition)
        else:  # FUNC, IFUNC, NOTYPE
            c.append(f'void visage_stub_f{i}(void) __asm__("{name}");')
            c.append(f'void visage_stub_f{i}(void) {{ visage_stub_die("{name}"); }}')
    cpath = os.path.join(tmp, soname + ".c")
    with open(cpath, "w") as f:
        f.write("\n".join(c) + "\n")
    mpath = os.path.join(tmp, soname + ".map")
    with open(mpath, "w") as f:
        if versions:
            for k, ver in enumerate(versions):
                names = "".join(f" {n};" for n in sorted(syms) if syms[n] == ver or (syms[n] is None and k == 0))
                local = " local: *;" if k == 0 else ""
                f.write(f"{ver} {{ global:{names or ' visage_stub_version_' + str(k) + ';'}{local} }};\n")
        else:
            f.write("{ global:" + "".join(f" {n};" for n in sorted(syms)) + " local: *; };\n")
    # An empty version node still needs a symbol to be emitted.
    for k, ver in enumerate(versions):
        if not any(v == ver or (v is None and k == 0) for v in syms.values()):
            with open(cpath, "a") as f:
                f.write(f"int visage_stub_version_{k};\n")
    target = os.path.join(out_lib, soname)
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-o", target, cpath, f"-Wl,-soname,{soname}",
                    f"-Wl,--version-script={mpath}", "-Wl,-z,noseparate-code", "-Wl,--no-undefined", "-s"],
                   check=True)
    total += len(syms)
    print(f"stub {soname}: {len(syms)} symbols, versions {' '.join(versions) or '-'}")
print(f"{len(stubs)} stubs, {total} symbols")
PY

# Links the linker looks for (-lavcodec), as a -dev package would make.
for m in "${modules[@]}" libx264; do
  so=$(cd "$out/lib" && ls "$m".so.* | head -1)
  ln -s "$so" "$out/lib/$m.so"
done
for m in "${modules[@]}"; do
  cp -r "$incdir/$m" "$out/include/"
done
# pkg-config files relative to their own place; private requirements kept
# only where they name a module of the bundle, private -l flags dropped
# (the libraries are shared, never linked statically); -rpath-link lets the
# linker find the libraries (stubs) these need without LD_LIBRARY_PATH.
for m in "${modules[@]}"; do
  requires_private=$(sed -n 's/^Requires.private: *//p' "$libdir/pkgconfig/$m.pc" | tr ',' '\n' | sed 's/^ *//' \
    | { grep -E "^($(IFS='|'; echo "${modules[*]}"))( |$)" || true; } | paste -sd, - | sed 's/,/, /g')
  sed -e 's|^prefix=.*|prefix=${pcfiledir}/../..|' -e 's|^libdir=.*|libdir=${prefix}/lib|' \
      -e 's|^includedir=.*|includedir=${prefix}/include|' -e "s|^Requires.private:.*|Requires.private: $requires_private|" \
      -e 's|^Libs.private:.*|Libs.private:|' -e 's|^Libs: -L${libdir} |Libs: -L${libdir} -Wl,-rpath-link,${libdir}|' \
      "$libdir/pkgconfig/$m.pc" > "$out/lib/pkgconfig/$m.pc"
done
du -sh --apparent-size "$out"
