# Runs at install time (cmake --install, make install): writes the systemd
# unit and, when absent, the config, with the paths of the actual prefix.
# An existing config is never overwritten.
set(prefix "${CMAKE_INSTALL_PREFIX}")
set(root "$ENV{DESTDIR}")
if(prefix STREQUAL "/usr")
  set(SYSCONFDIR "/etc")
else()
  set(SYSCONFDIR "${prefix}/etc")
endif()
# systemd's StateDirectory for the usual prefixes; beside a staging prefix.
if(prefix STREQUAL "/usr" OR prefix STREQUAL "/usr/local")
  set(STATEDIR "/var/lib/steerdns")
else()
  set(STATEDIR "${prefix}/var/lib/steerdns")
endif()
set(BINDIR "${prefix}/bin")
set(DOCDIR "${prefix}/share/doc/steerdns")

message(STATUS "Installing: ${root}${prefix}/lib/systemd/system/steerdns.service")
configure_file("${STEERDNS_SOURCE_DIR}/deploy/steerdns.service.in"
               "${root}${prefix}/lib/systemd/system/steerdns.service" @ONLY)
if(EXISTS "${root}${SYSCONFDIR}/steerdns/steerdns.yaml")
  message(STATUS "Keeping: ${root}${SYSCONFDIR}/steerdns/steerdns.yaml")
else()
  message(STATUS "Installing: ${root}${SYSCONFDIR}/steerdns/steerdns.yaml")
  configure_file("${STEERDNS_SOURCE_DIR}/deploy/steerdns.yaml.in"
                 "${root}${SYSCONFDIR}/steerdns/steerdns.yaml" @ONLY)
  # configure_file, not file(INSTALL): that one prepends DESTDIR itself, and
  # the zone landed under DESTDIR twice.
  message(STATUS "Installing: ${root}${SYSCONFDIR}/steerdns/zones/example.com.yaml")
  configure_file("${STEERDNS_SOURCE_DIR}/examples/zones/example.com.yaml"
                 "${root}${SYSCONFDIR}/steerdns/zones/example.com.yaml" COPYONLY)
endif()
file(MAKE_DIRECTORY "${root}${STATEDIR}")
# The steerdns user, on a real install only (not into a staging DESTDIR).
find_program(SYSUSERS systemd-sysusers)
if(root STREQUAL "" AND SYSUSERS AND (prefix STREQUAL "/usr" OR prefix STREQUAL "/usr/local"))
  execute_process(COMMAND "${SYSUSERS}" "${prefix}/lib/sysusers.d/steerdns.conf")
endif()
