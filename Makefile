# agentd build. `make` builds ./agentd; `make run` and `make test` do all setup.
# Every runtime/**/*.c except cli/main.c goes into a static library that the binary,
# the unit tests and the fake model server link against. Each leaf library and capability
# lives in a folder of its own under runtime/ (see the README's source tour); header
# dependencies come from the compiler (-MMD -MP). `make V=1` shows full compiler lines.

CC      ?= cc
PKGS    := lua5.4 json-c libevent libcurl sqlite3 libpcre2-8 ncursesw libedit libxml-2.0 libpq
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wimplicit-fallthrough -Wvla -Wundef -fno-common
OPT     ?= -O2 -g
ROUTE   := -include runtime/mem_route.h
CFLAGS   = -std=c11 -D_GNU_SOURCE -DAGENTD_WITH_PG $(OPT) $(WARN) -Iruntime $(ROUTE) $(EXTRA_CFLAGS)
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -levent_pthreads -lm

B       ?= build/release
SRC     ?= $(filter-out runtime/cli/main.c,$(wildcard runtime/*.c runtime/*/*.c))
OBJ     := $(SRC:runtime/%.c=$(B)/obj/%.o)
DEP     := $(OBJ:.o=.d)

ifeq ($(V),1)
Q :=
SAY := @true
else
Q := @
SAY := @printf '  %-4s %s\n'
endif
UNIT    ?= $(wildcard tests/unit/test_*.c)
UNITBIN := $(UNIT:tests/unit/%.c=$(B)/tests/%)
HELPERS ?= $(wildcard tests/helpers/*.c)
HELPBIN := $(HELPERS:tests/helpers/%.c=$(B)/%)

.PHONY: all deps run test test-release test-asan clean fuzz-schema bench format FORCE
all: deps agentd

deps:
	@./scripts/deps.sh

agentd: $(B)/agentd
	@cp $(B)/agentd agentd

# The compiler line, recorded: a change of flags (a define, an option) rebuilds everything
# instead of linking objects built the old way with new ones.
$(B)/cflags: FORCE
	@mkdir -p $(B)
	@echo '$(CC) $(CFLAGS) $(PKG_CFLAGS)' | cmp -s - $@ || echo '$(CC) $(CFLAGS) $(PKG_CFLAGS)' >$@

$(B)/obj/%.o: runtime/%.c $(B)/cflags
	@mkdir -p $(dir $@)
	$(SAY) CC $<
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

$(B)/libagentd.a: $(OBJ)
	@rm -f $@
	$(SAY) AR $@
	$(Q)ar rcs $@ $^

$(B)/agentd: runtime/cli/main.c $(B)/libagentd.a
	$(SAY) LINK $@
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP $< -o $@ $(B)/libagentd.a $(PKG_LIBS) $(EXTRA_LDFLAGS)

$(B)/tests/%: tests/unit/%.c tests/unit/check.h $(B)/libagentd.a $(B)/cflags | $(B)/tests
	$(SAY) TEST $@
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -Itests/unit $< -o $@ $(B)/libagentd.a $(PKG_LIBS) $(EXTRA_LDFLAGS)

$(B)/%: tests/helpers/%.c $(B)/libagentd.a
	$(SAY) LINK $@
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP $< -o $@ $(B)/libagentd.a $(PKG_LIBS) $(EXTRA_LDFLAGS)

# mem.c implements the routed functions, so it is the one file compiled without the route.
$(B)/obj/mem.o: ROUTE :=

-include $(DEP) $(wildcard $(B)/*.d $(B)/tests/*.d)

$(B)/obj $(B)/tests:
	@mkdir -p $@

build-all: $(B)/agentd $(UNITBIN) $(HELPBIN)

run: all
	./agentd run agents/support.lua "Where is my order 1042? It hasn't arrived."

# The suite runs twice: a release build, then everything again under ASan+UBSan.
test: deps
	@AGENTD_DEPS_TEST=1 ./scripts/deps.sh
	@$(MAKE) --no-print-directory agentd
	@$(MAKE) --no-print-directory B=build/release build-all
	@$(MAKE) --no-print-directory B=build/asan OPT="-O1 -g -fno-omit-frame-pointer" \
	    EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all" \
	    EXTRA_LDFLAGS="-fsanitize=address,undefined" build-all
	@tests/run.sh build/release build/asan

test-release: deps
	@$(MAKE) --no-print-directory B=build/release agentd build-all
	@tests/run.sh build/release

fuzz-schema:
	@mkdir -p build/fuzz/corpus
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Iruntime $(PKG_CFLAGS) \
	    tests/fuzz/fuzz_schema.c runtime/schema/*.c runtime/err.c runtime/text.c -o build/fuzz/fuzz_schema $(PKG_LIBS)
	build/fuzz/fuzz_schema -max_total_time=$${FUZZ_SECONDS:-600} -max_len=4096 build/fuzz/corpus tests/fuzz/seeds

format:
	clang-format -i runtime/*.[ch] runtime/*/*.[ch] tests/unit/*.c tests/helpers/*.c

clean:
	rm -rf build agentd

FORCE:
