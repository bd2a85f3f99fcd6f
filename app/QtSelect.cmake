# Chooses the Qt the desktop application builds against (policy: see the desktop-app issue).
#
#   PEREGRINE_QT=AUTO  Qt 6 + KF6SyntaxHighlighting if both exist; else Qt 5.15 + KF5SyntaxHighlighting
#                      (Debian 12 and Ubuntu 24.04 ship KSyntaxHighlighting only for Qt 5); else Qt 6
#                      with code highlighting compiled out; else Qt 5.15 without it; else no app.
#   PEREGRINE_QT=6     Qt 6 (required); highlighting compiled out when KF6 is missing.
#   PEREGRINE_QT=5     Qt 5.15 (required); highlighting compiled out when KF5 is missing.
#   PEREGRINE_QT=OFF   no desktop application (engine and CLI only).
#
# Results (set in the including scope):
#   PEREGRINE_HAVE_QT                   ON when a usable Qt was found
#   PEREGRINE_QT_MAJOR                  5 or 6
#   PEREGRINE_HAVE_SYNTAX_HIGHLIGHTING  ON when KSyntaxHighlighting of the same Qt major was found
#   PEREGRINE_SYNTAX_HIGHLIGHTING_TARGET  KF5::SyntaxHighlighting / KF6::SyntaxHighlighting (when found)
#   target peregrine_qt_defaults        compile definitions every app target links
#
# The Qt targets are always spelled Qt${PEREGRINE_QT_MAJOR}::Core etc.; versionless Qt:: targets are
# not created because AUTO may load both majors' packages while probing.

set(PEREGRINE_QT AUTO CACHE STRING "Qt for the desktop app: AUTO, 5, 6 or OFF")
set_property(CACHE PEREGRINE_QT PROPERTY STRINGS AUTO 5 6 OFF)

set(PEREGRINE_HAVE_QT OFF)
set(PEREGRINE_QT_MAJOR "")
set(PEREGRINE_HAVE_SYNTAX_HIGHLIGHTING OFF)
set(PEREGRINE_SYNTAX_HIGHLIGHTING_TARGET "")

# Found targets must be visible from ui/ and tests/app as well, not only from this directory.
set(CMAKE_FIND_PACKAGE_TARGETS_GLOBAL ON)
set(QT_NO_CREATE_VERSIONLESS_TARGETS ON)
set(_peregrine_qt_components Core Gui Widgets Test)

# Sets _qt_ok when Qt <major> with every component was found.
macro(_peregrine_find_qt major)
  set(_qt_ok OFF)
  if(${major} EQUAL 6)
    find_package(Qt6 COMPONENTS ${_peregrine_qt_components} QUIET)
    if(Qt6_FOUND)
      set(_qt_ok ON)
    endif()
  else()
    find_package(Qt5 5.15 COMPONENTS ${_peregrine_qt_components} QUIET)
    if(Qt5_FOUND)
      set(_qt_ok ON)
    endif()
  endif()
endmacro()

# Sets _ksh_ok when KSyntaxHighlighting for Qt <major> was found.
macro(_peregrine_find_highlighting major)
  set(_ksh_ok OFF)
  find_package(KF${major}SyntaxHighlighting QUIET)
  if(KF${major}SyntaxHighlighting_FOUND AND TARGET KF${major}::SyntaxHighlighting)
    set(_ksh_ok ON)
  endif()
endmacro()

macro(_peregrine_choose major with_highlighting)
  set(PEREGRINE_HAVE_QT ON)
  set(PEREGRINE_QT_MAJOR ${major})
  set(PEREGRINE_HAVE_SYNTAX_HIGHLIGHTING ${with_highlighting})
  if(${with_highlighting})
    set(PEREGRINE_SYNTAX_HIGHLIGHTING_TARGET KF${major}::SyntaxHighlighting)
  endif()
endmacro()

if(PEREGRINE_QT STREQUAL "OFF")
  # Nothing to find.
elseif(PEREGRINE_QT STREQUAL "AUTO")
  # Probe the highlighting packages first: each one pulls in its own Qt major, so a KF package that
  # is found tells us which Qt pairs with it before we commit to either.
  _peregrine_find_highlighting(6)
  if(_ksh_ok)
    _peregrine_find_qt(6)
    if(_qt_ok)
      _peregrine_choose(6 ON)
    endif()
  endif()
  if(NOT PEREGRINE_HAVE_QT)
    _peregrine_find_highlighting(5)
    if(_ksh_ok)
      _peregrine_find_qt(5)
      if(_qt_ok)
        _peregrine_choose(5 ON)
      endif()
    endif()
  endif()
  if(NOT PEREGRINE_HAVE_QT)
    _peregrine_find_qt(6)
    if(_qt_ok)
      _peregrine_choose(6 OFF)
    endif()
  endif()
  if(NOT PEREGRINE_HAVE_QT)
    _peregrine_find_qt(5)
    if(_qt_ok)
      _peregrine_choose(5 OFF)
    endif()
  endif()
elseif(PEREGRINE_QT STREQUAL "5" OR PEREGRINE_QT STREQUAL "6")
  _peregrine_find_qt(${PEREGRINE_QT})
  if(NOT _qt_ok)
    message(FATAL_ERROR "PEREGRINE_QT=${PEREGRINE_QT} but Qt ${PEREGRINE_QT} (components: "
                        "${_peregrine_qt_components}) was not found; install it or use PEREGRINE_QT=AUTO")
  endif()
  _peregrine_find_highlighting(${PEREGRINE_QT})
  _peregrine_choose(${PEREGRINE_QT} ${_ksh_ok})
else()
  message(FATAL_ERROR "PEREGRINE_QT must be AUTO, 5, 6 or OFF (got '${PEREGRINE_QT}')")
endif()

unset(CMAKE_FIND_PACKAGE_TARGETS_GLOBAL)

if(PEREGRINE_HAVE_QT)
  set(_qt_version ${Qt${PEREGRINE_QT_MAJOR}Core_VERSION})
  if(PEREGRINE_HAVE_SYNTAX_HIGHLIGHTING)
    set(_ksh_note "with KF${PEREGRINE_QT_MAJOR}SyntaxHighlighting ${KF${PEREGRINE_QT_MAJOR}SyntaxHighlighting_VERSION}")
  else()
    set(_ksh_note "without code highlighting (KF${PEREGRINE_QT_MAJOR}SyntaxHighlighting not found)")
  endif()
  message(STATUS "Peregrine: desktop app uses Qt ${_qt_version} ${_ksh_note} (PEREGRINE_QT=${PEREGRINE_QT})")

  if(NOT TARGET peregrine_qt_defaults)
    add_library(peregrine_qt_defaults INTERFACE)
  endif()
  target_compile_definitions(peregrine_qt_defaults INTERFACE
    # Qt 5 builds reject what Qt 6 removed, so the code stays written once for both.
    QT_DISABLE_DEPRECATED_BEFORE=0x050F00
    PEREGRINE_QT_MAJOR=${PEREGRINE_QT_MAJOR}
    PEREGRINE_HAVE_SYNTAX_HIGHLIGHTING=$<BOOL:${PEREGRINE_HAVE_SYNTAX_HIGHLIGHTING}>)
elseif(PEREGRINE_QT STREQUAL "OFF")
  message(STATUS "Peregrine: desktop app skipped (PEREGRINE_QT=OFF)")
else()
  message(STATUS "Peregrine: desktop app skipped: no Qt 6 or Qt 5.15 with Widgets and Test found "
                 "(engine and CLI still build; install qt6-base-dev or qtbase5-dev)")
endif()
