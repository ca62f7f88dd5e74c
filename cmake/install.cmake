# Install layout and the Debian package (issue: run it the way people run it).
#   bin:      kvd, kvctl
#   /etc/kvd/kvd.toml            (never overwrites an existing one)
#   <unitdir>/kvd.service, kvd.socket, kvd@.service (one node per instance)
#   <sysusersdir>/kvd.conf       (system user and group kvd)
#   <docdir>/README.md, docs/*.md

set(KVD_CONFIG_DIR "/etc/kvd" CACHE PATH "Where kvd.toml is installed")
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(_kvd_unit_default "/lib/systemd/system")
  set(_kvd_sysusers_default "/usr/lib/sysusers.d")
else()
  set(_kvd_unit_default "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
  set(_kvd_sysusers_default "${CMAKE_INSTALL_PREFIX}/lib/sysusers.d")
endif()
set(KVD_SYSTEMD_UNIT_DIR "${_kvd_unit_default}" CACHE PATH "systemd system unit directory")
set(KVD_SYSUSERS_DIR "${_kvd_sysusers_default}" CACHE PATH "sysusers.d directory")
set(KVD_DOC_DIR "${CMAKE_INSTALL_FULL_DOCDIR}")
# Directories the install creates (/etc/kvd, doc dirs) are world-readable.
set(CMAKE_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
    OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)

# The installed config is the shipped one with service paths.
set(_kvd_conf "")
if(EXISTS ${PROJECT_SOURCE_DIR}/conf/kvd.toml)
  file(READ ${PROJECT_SOURCE_DIR}/conf/kvd.toml _kvd_conf)
endif()
string(REPLACE "wal_path = \"data/wal\"" "wal_path = \"/var/lib/kvd/wal\"" _kvd_conf "${_kvd_conf}")
string(REPLACE "snapshot_path = \"data/snapshots\"" "snapshot_path = \"/var/lib/kvd/snapshots\"" _kvd_conf "${_kvd_conf}")
string(REPLACE "socket = \"data/kvd.sock\"" "socket = \"/run/kvd/kvd.sock\"" _kvd_conf "${_kvd_conf}")
file(WRITE ${PROJECT_BINARY_DIR}/kvd.toml.installed "${_kvd_conf}")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/conf/kvd.toml)

configure_file(${PROJECT_SOURCE_DIR}/systemd/kvd.service.in ${PROJECT_BINARY_DIR}/kvd.service @ONLY)
configure_file(${PROJECT_SOURCE_DIR}/systemd/kvd@.service.in ${PROJECT_BINARY_DIR}/kvd@.service @ONLY)

install(FILES ${PROJECT_BINARY_DIR}/kvd.service ${PROJECT_BINARY_DIR}/kvd@.service ${PROJECT_SOURCE_DIR}/systemd/kvd.socket
        DESTINATION ${KVD_SYSTEMD_UNIT_DIR})
install(FILES ${PROJECT_SOURCE_DIR}/systemd/kvd.sysusers DESTINATION ${KVD_SYSUSERS_DIR} RENAME kvd.conf)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR} FILES_MATCHING PATTERN "*.md")
# A sample always goes next to the live file, so changes in a new version can be diffed.
install(FILES ${PROJECT_BINARY_DIR}/kvd.toml.installed DESTINATION ${CMAKE_INSTALL_DATADIR}/kvd RENAME kvd.toml.example)

# /etc/kvd/kvd.toml: installed only when absent (cmake --install), so local
# edits survive upgrades. In the .deb it is a conffile (dpkg asks).
# (file(INSTALL) adds DESTDIR to an absolute destination by itself.)
if(NOT KVD_PACKAGING)
  install(CODE "
    set(_dst \"\$ENV{DESTDIR}${KVD_CONFIG_DIR}/kvd.toml\")
    if(EXISTS \"\${_dst}\")
      message(STATUS \"Keeping existing: \${_dst}\")
    else()
      file(INSTALL \"${PROJECT_BINARY_DIR}/kvd.toml.installed\" DESTINATION \"${KVD_CONFIG_DIR}\"
           RENAME kvd.toml PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
    endif()
    # kvd runs as user kvd and must read its config: the directory is 0755.
    file(CHMOD \"\$ENV{DESTDIR}${KVD_CONFIG_DIR}\" DIRECTORY_PERMISSIONS
         OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
    if(\"\$ENV{DESTDIR}\" STREQUAL \"\")
      execute_process(COMMAND systemd-sysusers ${KVD_SYSUSERS_DIR}/kvd.conf RESULT_VARIABLE _rc)
      execute_process(COMMAND systemctl daemon-reload OUTPUT_QUIET ERROR_QUIET)
    endif()
  ")
else()
  install(FILES ${PROJECT_BINARY_DIR}/kvd.toml.installed DESTINATION ${KVD_CONFIG_DIR} RENAME kvd.toml)
endif()

# ---- Debian package: cpack -G DEB (configure with -DCMAKE_INSTALL_PREFIX=/usr -DKVD_PACKAGING=ON)
set(CPACK_PACKAGE_NAME "kvd")
set(CPACK_PACKAGE_VENDOR "kvd developers")
set(CPACK_PACKAGE_CONTACT "kvd developers <kvd@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "crash-consistent key-value daemon (WAL, group commit, snapshots)")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION "database")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${PROJECT_SOURCE_DIR}/systemd/debian/conffiles;${PROJECT_SOURCE_DIR}/systemd/debian/postinst;${PROJECT_SOURCE_DIR}/systemd/debian/prerm;${PROJECT_SOURCE_DIR}/systemd/debian/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
