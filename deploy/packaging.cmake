# The three Debian packages, by CPack's DEB generator, one per install component:
# flashrack-controller (flashrackd, its unit and config), flashrack-agent (the agent,
# its unit, config and udev rule, the simulator and its engine stand-in) and
# flashrack-cli (flashrack). Build them from a build configured for the system:
#   cmake -S . -B build-deb -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
#         -DFR_FHS_DEFAULTS=ON -DFR_TESTS=OFF && cmake --build build-deb -j && cpack --config build-deb/CPackConfig.cmake -B build-deb/debs
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME flashrack)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR flashrack)
set(CPACK_PACKAGE_CONTACT "flashrack maintainers <root@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL controller agent cli)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
# Library dependencies from the binaries themselves (dpkg-shlibdeps, package dpkg-dev).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)

set(CPACK_DEBIAN_CONTROLLER_PACKAGE_NAME flashrack-controller)
set(CPACK_COMPONENT_CONTROLLER_DESCRIPTION "flashrack site controller (flashrackd)\n"
    " Keeps restore jobs, units, ports and attempts in SQLite and schedules them onto\n"
    " the agents of a site; runs the site's IPSW mirror. A systemd service.")
set(CPACK_DEBIAN_AGENT_PACKAGE_NAME flashrack-agent)
set(CPACK_COMPONENT_AGENT_DESCRIPTION "flashrack agent for a USB host, and the rack simulator\n"
    " Drives many iPhone restores at once on one host full of USB hubs (one engine\n"
    " process per phone) for flashrackd. A systemd service. Includes flashrack-sim.")
set(CPACK_DEBIAN_AGENT_PACKAGE_RECOMMENDS "usbmuxd, idevicerestore")
set(CPACK_DEBIAN_CLI_PACKAGE_NAME flashrack-cli)
set(CPACK_COMPONENT_CLI_DESCRIPTION "flashrack operator command line\n"
    " Submits, watches and reports restore jobs of a flashrack site controller.")

# Maintainer scripts and conffiles, from one template per kind.
foreach(comp controller agent)
  set(FR_PKG_COMPONENT ${comp})
  if(comp STREQUAL "controller")
    set(FR_PKG_UNIT flashrackd.service)
  else()
    set(FR_PKG_UNIT flashrack-agent.service)
  endif()
  set(dir ${CMAKE_BINARY_DIR}/deb-${comp})
  configure_file(${CMAKE_SOURCE_DIR}/deploy/debian/postinst.in ${dir}/postinst @ONLY)
  configure_file(${CMAKE_SOURCE_DIR}/deploy/debian/postrm.in ${dir}/postrm @ONLY)
  file(WRITE ${dir}/conffiles "${CMAKE_INSTALL_FULL_SYSCONFDIR}/flashrack/${comp}.ini\n")
  string(TOUPPER ${comp} COMP)
  set(CPACK_DEBIAN_${COMP}_PACKAGE_CONTROL_EXTRA ${dir}/postinst ${dir}/postrm ${dir}/conffiles)
  set(CPACK_DEBIAN_${COMP}_PACKAGE_CONTROL_STRICT_PERMISSION ON)
endforeach()

include(CPack)
