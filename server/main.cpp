// steerdns: the command-line shell. Thin by design: parse arguments, load,
// hand over to Runtime. Everything it does is reachable from tests.
#include <CLI/CLI.hpp>
#include <malloc.h>
#include <spdlog/spdlog.h>

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>

#include "common/log.hpp"
#include "server/config.hpp"
#include "server/ctl.hpp"
#include "server/explain.hpp"
#include "server/metrics.hpp"
#include "server/runtime.hpp"
#include "server/world.hpp"

#ifndef STEERDNS_VERSION
#define STEERDNS_VERSION "0.0.0"
#endif

namespace {

using namespace steerdns;

int run_check(const std::string& path) {
  try {
    const server::Config config = server::load_config(path);
    const auto world = server::build_world(config);
    // serve starts with a bad state file (and applies what it can); check
    // fails on it, so that a bad push is caught before it matters.
    if (!config.state_file.empty()) {
      const std::vector<std::string> problems = server::state_file_problems(config.state_file, *world);
      for (const auto& problem : problems) std::fprintf(stderr, "%s\n", problem.c_str());
      if (!problems.empty()) return 1;
    }
    std::printf("%s: ok, %zu zones, %zu records\n", path.c_str(), world->zones.zones().size(),
                world->zones.record_count());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}

int run_explain(const std::string& path, const std::string& name, const std::string& client, bool no_ecs) {
  try {
    const auto world = server::build_world(server::load_config(path));
    std::fputs(server::explain(*world, name, client, nullptr,
                               no_ecs ? server::Placed::by_resolver : server::Placed::by_ecs)
                   .c_str(),
               stdout);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}

// Every probe holds a socket while it runs: a thousand VIPs need more than
// the usual soft limit of 1024 descriptors. Raise it to the hard limit.
void raise_descriptor_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
      spdlog::warn("cannot raise the descriptor limit: {}", std::strerror(errno));
  }
}

bool is_command(const CLI::App& app, const std::string& name) {
  for (const CLI::App* sub : app.get_subcommands({}))
    if (sub->get_name() == name) return true;
  return false;
}

int run_serve(const std::string& path) {
  // Until Runtime::run() handles it, a SIGHUP (say, from a config deployment
  // racing our start) must not kill us; the config is read fresh anyway.
  std::signal(SIGHUP, SIG_IGN);
  server::Config config;
  std::shared_ptr<const server::World> world;
  std::unique_ptr<health::Prober> prober;
  std::unique_ptr<server::Metrics> metrics;
  try {
    config = server::load_config(path);
    common::setup_logging(config.log_format, spdlog::level::from_str(config.log_level));
    server::make_admin_token(config.admin, config.user);
    raise_descriptor_limit();
    // The prober's first round finishes inside build_world, before any
    // listener opens: the first answer already knows health.
    prober = std::make_unique<health::Prober>(config.state_file);
    metrics = std::make_unique<server::Metrics>(config.workers);
    world = server::build_world(config, prober.get(), metrics.get());
    // Building a world allocates far more than the world keeps (the GeoIP
    // database's walk, the zone YAML trees): give the freed memory back.
    malloc_trim(0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  try {
    server::Runtime runtime(std::move(config), std::move(world), *prober, *metrics);
    runtime.bind();
    return runtime.run();
  } catch (const std::exception& e) {
    spdlog::critical("cannot serve: {}", e.what());
    return 1;
  }
}

std::string one_line(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

// "-c, --config TEXT" (options) or "name TEXT" (positionals), as help2man reads them.
std::string option_text(const CLI::Option& o) {
  std::string names = o.get_name(false, true);
  for (std::size_t at = 0; (at = names.find(',', at)) != std::string::npos; at += 2)
    names.replace(at, 1, ", ");
  if (!o.nonpositional()) names = o.get_name(true, false);
  if (o.get_type_size() != 0 && !o.get_type_name().empty()) names += " " + o.get_type_name();
  return names;
}

void print_options(const CLI::App& app, bool top) {
  for (const CLI::Option* o : app.get_options()) {
    if (o->get_group().empty()) continue;                                          // hidden
    if (!top && (o->check_lname("help") || o->check_lname("help-all"))) continue;  // said once
    std::string line = "  " + option_text(*o);
    line.resize(std::max<std::size_t>(line.size() + 2, 30), ' ');
    std::printf("%s%s%s\n", line.c_str(), one_line(o->get_description()).c_str(),
                o->get_required() ? " (required)" : "");
  }
}

// `steerdns --help-man`: the help of every command in the GNU layout that
// help2man turns into the man page's sections (OPTIONS, then one section per
// command), from the same CLI11 definitions as --help.
void print_help_for_man(const CLI::App& app) {
  std::printf("Usage: steerdns COMMAND [OPTIONS]\n\nOptions:\n");
  print_options(app, true);
  std::printf("\nCommands:\n");
  for (const CLI::App* sub : app.get_subcommands({})) {
    std::string line = "  " + sub->get_name();
    line.resize(std::max<std::size_t>(line.size() + 2, 30), ' ');
    std::printf("%s%s\n", line.c_str(), one_line(sub->get_description()).c_str());
  }
  for (const CLI::App* sub : app.get_subcommands({})) {
    std::printf("\n%s command:\n", sub->get_name().c_str());
    print_options(*sub, false);
    // ctl's commands and the exit status have sections of their own (steerdns.h2m)
    if (sub->get_name() == "serve") std::printf("\n%s\n", sub->get_footer().c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"steerdns: an authoritative DNS server that answers with the nearest healthy region",
               "steerdns"};
  app.set_version_flag("--version", "steerdns " STEERDNS_VERSION);
  app.set_help_all_flag("--help-all", "print the help of every command");
  app.require_subcommand(1);
  std::string config_path;

  auto* serve = app.add_subcommand("serve", "serve DNS in the foreground, logging to stderr");
  serve->add_option("-c,--config", config_path, "the main config file (YAML)")->required();
  serve->footer(
      "Start-up: every zone is compiled and every health check probed once before any socket\n"
      "opens, so the first answer already knows health; then READY=1 goes to systemd\n"
      "(Type=notify). Started as root, steerdns binds, then becomes server.user.\n"
      "Signals: SIGHUP reloads the config and every zone (a broken one is logged and the\n"
      "previous data keeps being served); SIGTERM and SIGINT stop cleanly.");
  auto* check = app.add_subcommand("check",
                                   "load and compile the config and every zone as serve would, bind nothing");
  check->add_option("-c,--config", config_path, "the main config file (YAML)")->required();
  std::string explain_name, explain_client;
  auto* explain =
      app.add_subcommand("explain",
                         "show where a client is placed and what it is answered, with the serving code\n"
                         "(every VIP counts as up: `steerdns ctl explain` asks the running server)");
  explain->add_option("-c,--config", config_path, "the main config file (YAML)")->required();
  explain->add_option("name", explain_name, "the name asked, e.g. artifacts.example.com")->required();
  explain
      ->add_option("client", explain_client,
                   "the client: ADDRESS[/PREFIX], as a resolver's EDNS Client Subnet")
      ->required();
  bool explain_no_ecs = false;
  explain->add_flag("--no-ecs", explain_no_ecs,
                    "the client's resolver sends no ECS: CLIENT is the resolver's address");

  server::CtlOptions ctl_options;
  auto* ctl = app.add_subcommand("ctl", "talk to a running server's admin API");
  ctl->add_option("-c,--config", ctl_options.config_path,
                  "read the admin address and token from this config");
  ctl->add_option("--admin", ctl_options.admin, "the admin API, HOST:PORT (default 127.0.0.1:8053)");
  ctl->add_option("--token-file", ctl_options.token_file, "the bearer token for drain, undrain and reload");
  ctl->add_flag("--json", ctl_options.json, "print the API's JSON (status, explain, drain, undrain, reload)");
  ctl->add_flag("--no-ecs", ctl_options.no_ecs, "explain: the resolver sends no ECS (CLIENT is its address)");
  ctl->add_option("--reason", ctl_options.reason, "drain: why, kept with the drain and shown in status");
  ctl->add_option("--by", ctl_options.by, "drain: who drains (default: the login name running ctl)");
  ctl->add_option("command", ctl_options.command,
                  "status | explain NAME CLIENT | drain TARGET | undrain TARGET | reload")
      ->required();
  ctl->add_option("arguments", ctl_options.arguments, "the command's arguments");
  ctl->footer(
      "Commands:\n"
      "  status              every geo name, region and VIP: state, reason, override, last change\n"
      "  explain NAME CLIENT where CLIENT (ADDRESS[/PREFIX]) is placed, with live health\n"
      "  drain TARGET        force a region (by name) or a VIP (by address) down: its clients\n"
      "                      move at once; the state file keeps it across restarts\n"
      "  undrain TARGET      return TARGET to automatic (its health checks decide again)\n"
      "  reload              reload the config and every zone, as SIGHUP does, and report\n"
      "Exit status: 0 done; 1 refused (the message says why); 2 the API cannot be reached.");
  app.footer(
      "Exit status: 0 on success; 1 when the config or a zone is invalid (the error\n"
      "names FILE:LINE and the offending key or value) or a socket cannot be bound;\n"
      "2 on a usage error (an unknown command or option, a missing argument).\n"
      "Files: the config (see docs/configuration.md), zone files, the\n"
      "GeoIP database (built in when the config names none), health.state_file.");

  if (argc == 2 && std::strcmp(argv[1], "--help-man") == 0) {
    print_help_for_man(app);
    return 0;
  }
  // Usage errors exit 2, as the shell's own tools do (not CLI11's codes).
  if (argc > 1 && argv[1][0] != '-' && !is_command(app, argv[1])) {
    std::fprintf(stderr, "steerdns: unknown command '%s': serve, check, explain or ctl (steerdns --help)\n",
                 argv[1]);
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help, the version, or the error and a hint
    return code == static_cast<int>(CLI::ExitCodes::Success) ? 0 : 2;
  }
  if (*check) return run_check(config_path);
  if (*explain) return run_explain(config_path, explain_name, explain_client, explain_no_ecs);
  if (*ctl) return server::run_ctl(ctl_options);
  return run_serve(config_path);
}
