# Thin wrapper: install what is missing (Debian 12, as root), configure, build,
# then serve the example or run every test. The real build is CMake.
BUILD      ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS       ?= $(shell nproc)

# What the build needs (`make`, `make install`, `make run`): compilers and
# libraries, help2man for the man page, the Perl writer of the test GeoIP
# databases (built with the tests).
DEB_PACKAGES := build-essential cmake pkg-config python3 \
  libldns-dev libuv1-dev libmaxminddb-dev libmaxmind-db-writer-perl libyaml-dev libspdlog-dev libfmt-dev libcli11-dev doctest-dev libbenchmark-dev \
  libcurl4-openssl-dev libssl-dev nlohmann-json3-dev openssl ca-certificates \
  libcpp-httplib-dev libsystemd-dev help2man systemd \
  libfstrm-dev libprotobuf-c-dev protobuf-c-compiler
# `make run` also installs dig, to try the example with.
RUN_PACKAGES := dnsutils
# Only for `make test`: the clients, resolvers and tools the tests start.
# `make install` never installs these (unbound, say, would take
# 127.0.0.1:53, the address the installed config serves).
TEST_PACKAGES := dnsutils knot-dnsutils unbound pdns-recursor curl fstrm-bin util-linux prometheus
# Resolvers the tests start themselves: installing them must not leave a
# system service running (it would take 127.0.0.1:53 and prime the root).
DAEMON_PACKAGES := unbound pdns-recursor prometheus
# Only for bench/.
BENCH_PACKAGES := dnsperf util-linux time
# Only for `make fuzz`: clang, its libFuzzer and sanitizer runtimes
# (libclang-rt-14-dev; libfuzzer-14-dev is not needed for -fsanitize=fuzzer),
# llvm-symbolizer (llvm-14) for readable stacks.
FUZZ_PACKAGES := clang libclang-rt-14-dev llvm-14
FUZZ_BUILD    ?= build-fuzz
FUZZ_SECONDS  ?= 60
FUZZ_TARGETS  := packet edns zone config health_json

.PHONY: all deps test-deps bench-deps configure build run test install bench clean world-db fuzz asan tsan lint

all: build

# Idempotent: asks dpkg first and runs apt-get only for what is missing.
define apt_install
	@missing=$$(for p in $(1); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	  if [ -d /run/systemd/system ]; then \
	    for p in $$missing; do case " $(DAEMON_PACKAGES) " in *" $$p "*) \
	      $$sudo systemctl disable --now $$p.service >/dev/null 2>&1 || true;; esac; done; \
	  fi; \
	fi
endef

deps:
	$(call apt_install,$(DEB_PACKAGES))

test-deps: deps
	$(call apt_install,$(TEST_PACKAGES))

bench-deps: deps
	$(call apt_install,$(BENCH_PACKAGES))
	bench/peers/install.sh

configure: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(call apt_install,$(RUN_PACKAGES))
	$(BUILD)/steerdns serve -c examples/steerdns.yaml

# tools/lint: clang-format (.clang-format) over every tracked *.cpp/*.hpp,
# include layering between modules, and a -Werror build in build-lint
# (LINT_BUILD). `tools/lint format|layers|build` runs one part.
LINT_PACKAGES := clang-format
lint: deps
	$(call apt_install,$(LINT_PACKAGES))
	tools/lint

# Then the ASan+UBSan suite (make asan); SANITIZE=0 skips it.
SANITIZE ?= 1
test: test-deps build
	cd $(BUILD) && ctest --output-on-failure
	@if [ "$(SANITIZE)" != 0 ]; then $(MAKE) --no-print-directory asan; fi

# Sanitizers. `make asan`: everything built with AddressSanitizer (leaks
# included) and UBSan in $(ASAN_BUILD), then every test. `make tsan`: built
# with ThreadSanitizer in $(TSAN_BUILD), then the tests where threads meet:
# the unit tests (Publication and health::Prober under concurrent readers
# among them) and the system tests of probing, reload, the admin API, faults
# and the soak (flapping backends while reloading).
# The first finding stops the process that made it, and fails the target
# even when no test notices (a server's leaks at exit, say): every process
# writes its report to <build>/sanitizer/ (world-writable: some tests drop
# the server's privileges), printed at the end.
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
TSAN_TESTS ?= ^(unit_(common|zones|geoip|health|server): |system_test_(health|reload|admin|soak|faults)(_[a-z_]+)?$$)
ASAN_ENV = ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:print_stacktrace=1:check_initialization_order=1:strict_init_order=1:log_exe_name=1:log_path=$(abspath $(ASAN_BUILD))/sanitizer/asan \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_exe_name=1:log_path=$(abspath $(ASAN_BUILD))/sanitizer/ubsan
TSAN_ENV = TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:log_exe_name=1:log_path=$(abspath $(TSAN_BUILD))/sanitizer/tsan

# $(1): build folder, $(2): sanitizer environment, $(3): ctest options.
define sanitized_ctest
	@rm -rf $(1)/sanitizer && mkdir -p $(1)/sanitizer && chmod 1777 $(1)/sanitizer
	@cd $(1) && status=0; env $(2) ctest --output-on-failure $(3) || status=1; \
	for f in sanitizer/*; do [ -e "$$f" ] || continue; echo "=== $(1)/$$f"; cat "$$f"; status=1; done; \
	exit $$status
endef

asan: test-deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DSTEERDNS_SANITIZE=address,undefined
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	$(call sanitized_ctest,$(ASAN_BUILD),$(ASAN_ENV),)

tsan: test-deps
	cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DSTEERDNS_SANITIZE=thread
	cmake --build $(TSAN_BUILD) -j $(JOBS)
	$(call sanitized_ctest,$(TSAN_BUILD),$(TSAN_ENV),-R '$(TSAN_TESTS)')

# Binary, man page, systemd unit, sysusers.d entry, docs and (when absent) a
# config under PREFIX; then: systemctl daemon-reload && systemctl enable --now steerdns
PREFIX ?= /usr/local
# Installs only what the build needs, never the test tools.
install: build
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix $(PREFIX)

# About 15 minutes; bench/README.md says what each prints.
bench: bench-deps build
	bench/compare.sh
	bench/run-scaling.sh
	bench/run-startup.sh
	bench/run-geo.sh
	build/bench/micro --benchmark_repetitions=3 --benchmark_report_aggregates_only=true

# libFuzzer targets (fuzz/) built with clang, ASan and UBSan in $(FUZZ_BUILD),
# each run for FUZZ_SECONDS on a scratch copy of its seeds (fuzz/corpus/ is
# left as it is). Findings (crash-*, leak-*, timeout-*, oom-*) are written to
# $(FUZZ_BUILD)/fuzz-run/NAME/findings/; new coverage to .../corpus/.
fuzz: deps
	$(call apt_install,$(FUZZ_PACKAGES))
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DSTEERDNS_FUZZ=ON
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzzers
	@status=0; for t in $(FUZZ_TARGETS); do \
	  work=$(FUZZ_BUILD)/fuzz-run/$$t; rm -rf $$work; mkdir -p $$work/corpus $$work/findings; \
	  cp fuzz/corpus/$$t/* $$work/corpus/; \
	  dict=""; [ -f fuzz/$$t.dict ] && dict=-dict=fuzz/$$t.dict; \
	  echo "== fuzz_$$t for $(FUZZ_SECONDS) s"; \
	  $(FUZZ_BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 $$dict \
	    -print_final_stats=1 -artifact_prefix=$$work/findings/ $$work/corpus 2>$$work/log || \
	    { status=1; tail -n 60 $$work/log; }; \
	  grep -E '^(#[0-9]+[[:space:]]+DONE|Done|stat::number_of_executed_units|stat::average_exec_per_sec)' $$work/log || true; \
	done; \
	if [ $$status != 0 ]; then echo "fuzz: findings in $(FUZZ_BUILD)/fuzz-run/*/findings/"; fi; exit $$status

clean:
	rm -rf $(BUILD)

# Rebuilds geoip/data/steerdns-world.mmdb from Debian's tor-geoipdb (fetched,
# not installed: installing it would pull in the tor daemon) and tzdata.
world-db: deps
	$(call apt_install,tzdata)
	@tmp=$$(mktemp -d) && cd $$tmp && apt-get download tor-geoipdb >/dev/null && \
	  dpkg-deb -x tor-geoipdb_*.deb root && cd - >/dev/null && \
	  geoip/tools/make-country-table.py > geoip/data/countries.tsv && \
	  geoip/tools/build-world-mmdb.pl --countries geoip/data/countries.tsv \
	    --geoip $$tmp/root/usr/share/tor/geoip --geoip6 $$tmp/root/usr/share/tor/geoip6 \
	    --out geoip/data/steerdns-world.mmdb; status=$$?; rm -rf $$tmp; exit $$status
