# SPDX-License-Identifier: MIT
# Install rules for what ships beside the binary, and CPack: .deb, .rpm and a source tarball.
#
# Included from the end of the top-level CMakeLists.txt. The binary and the man page have their
# own install rules there; this file adds the shell completions, README, LICENSE, the Debian
# copyright file and the examples, then configures CPack. In a build directory:
#   cpack -G DEB    cpack -G RPM    cpack --config CPackSourceConfig.cmake
# (packaging/ci-packages.sh does all three and installs the .deb to check it).

# Where each shell looks for completions. Debian's zsh reads vendor-completions; Fedora's reads
# site-functions, so an RPM meant for Fedora is configured with
# -DRLOCK_ZSH_COMPLETION_DIR=share/zsh/site-functions.
set(RLOCK_BASH_COMPLETION_DIR "${CMAKE_INSTALL_DATAROOTDIR}/bash-completion/completions"
    CACHE STRING "Where the bash completion is installed, relative to the prefix")
set(RLOCK_ZSH_COMPLETION_DIR "${CMAKE_INSTALL_DATAROOTDIR}/zsh/vendor-completions"
    CACHE STRING "Where the zsh completion is installed, relative to the prefix")
set(RLOCK_FISH_COMPLETION_DIR "${CMAKE_INSTALL_DATAROOTDIR}/fish/vendor_completions.d"
    CACHE STRING "Where the fish completion is installed, relative to the prefix")

install(FILES completions/rlock.bash DESTINATION "${RLOCK_BASH_COMPLETION_DIR}" RENAME rlock)
install(FILES completions/_rlock DESTINATION "${RLOCK_ZSH_COMPLETION_DIR}")
install(FILES completions/rlock.fish DESTINATION "${RLOCK_FISH_COMPLETION_DIR}")

# README and license in share/doc/rlock; Debian also wants the license as "copyright" there.
set(RLOCK_DOC_FILES LICENSE)
if(EXISTS "${CMAKE_CURRENT_SOURCE_DIR}/README.md")
  list(APPEND RLOCK_DOC_FILES README.md)
else()
  message(WARNING "README.md not found: the packages will ship without it")
endif()
install(FILES ${RLOCK_DOC_FILES} DESTINATION "${CMAKE_INSTALL_DOCDIR}")
# The examples of docs/examples (each one run by a test in tests/examples/).
install(DIRECTORY docs/examples/ DESTINATION "${CMAKE_INSTALL_DOCDIR}/examples" USE_SOURCE_PERMISSIONS)
configure_file(packaging/copyright.in "${CMAKE_CURRENT_BINARY_DIR}/packaging/copyright" @ONLY)
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/packaging/copyright" DESTINATION "${CMAKE_INSTALL_DOCDIR}")

# --- what every package says about itself
set(RLOCK_PACKAGE_CONTACT "rlock authors <rlock@example.org>"
    CACHE STRING "Maintainer of the packages, \"Name <email>\" (Debian Maintainer, RPM Packager)")
set(RLOCK_PACKAGE_RELEASE "1" CACHE STRING "Package release number (the -1 in 0.1.0-1)")

set(CPACK_PACKAGE_NAME "rlock")
set(CPACK_PACKAGE_VENDOR "the rlock authors")
set(CPACK_PACKAGE_CONTACT "${RLOCK_PACKAGE_CONTACT}")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "named locks in Redis for shell scripts, cron jobs and CI pipelines")
set(CPACK_PACKAGE_DESCRIPTION_FILE "${CMAKE_CURRENT_SOURCE_DIR}/packaging/description.txt")
set(CPACK_RESOURCE_FILE_LICENSE "${CMAKE_CURRENT_SOURCE_DIR}/LICENSE")
set(CPACK_PACKAGE_CHECKSUM SHA256)
set(CPACK_STRIP_FILES ON)  # the debug info of RelWithDebInfo stays in the build tree
set(CPACK_PACKAGE_INSTALL_DIRECTORY "rlock")
if(NOT CPACK_GENERATOR)
  set(CPACK_GENERATOR "DEB;RPM")
endif()
# The .deb and .rpm install into /usr (CPack's default for both, whatever CMAKE_INSTALL_PREFIX
# says for `cmake --install`); setting CPACK_PACKAGING_INSTALL_PREFIX here would also move the
# source tarball's contents under usr/.

# --- Debian
file(READ "${CPACK_PACKAGE_DESCRIPTION_FILE}" rlock_long_description)
string(STRIP "${rlock_long_description}" rlock_long_description)
# A control-file description: continuation lines start with a space, blank ones are " .".
string(REGEX REPLACE "\n\n" "\n.\n" rlock_deb_description "${rlock_long_description}")
# CPack puts CPACK_PACKAGE_DESCRIPTION_SUMMARY on the synopsis line itself.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "${rlock_deb_description}")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE "${RLOCK_PACKAGE_RELEASE}")
set(CPACK_DEBIAN_PACKAGE_SECTION "utils")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # Depends: computed by dpkg-shlibdeps (dpkg-dev)
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "redis-server")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# --- RPM (rpmbuild computes Requires: from the ELF dependencies)
set(CPACK_RPM_FILE_NAME RPM-DEFAULT)
set(CPACK_RPM_PACKAGE_RELEASE "${RLOCK_PACKAGE_RELEASE}")
set(CPACK_RPM_PACKAGE_LICENSE "MIT")
set(CPACK_RPM_PACKAGE_GROUP "Applications/System")
set(CPACK_RPM_PACKAGE_DESCRIPTION "${rlock_long_description}")
set(CPACK_RPM_PACKAGE_AUTOREQ ON)
# Directories the package puts files in but must not own (the filesystem and the shells do).
set(CPACK_RPM_EXCLUDE_FROM_AUTO_FILELIST_ADDITION
    /usr/share/man /usr/share/man/man1 /usr/share/doc
    /usr/share/bash-completion /usr/share/bash-completion/completions
    /usr/share/zsh /usr/share/zsh/vendor-completions /usr/share/zsh/site-functions
    /usr/share/fish /usr/share/fish/vendor_completions.d)

# --- source tarball: the source tree without build output, VCS data or editor droppings
set(CPACK_SOURCE_GENERATOR "TGZ")
set(CPACK_SOURCE_PACKAGE_FILE_NAME "rlock-${PROJECT_VERSION}")
set(CPACK_SOURCE_IGNORE_FILES
    "/\\\\.git/" "/\\\\.git$" "/build[^/]*/" "/_CPack_Packages/" "/\\\\.cache/"
    "/compile_commands\\\\.json$" "~$" "\\\\.swp$" "/#[^/]*#$" "\\\\.orig$" "\\\\.rej$")

include(CPack)
