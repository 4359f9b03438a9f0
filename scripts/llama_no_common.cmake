# Included after every project() call of the llama-cpp-python build (CMAKE_PROJECT_INCLUDE, set by
# scripts/setup.sh). llama-cpp-python forces llama.cpp's `common` library on, though its Python
# package never loads it; it is about half of the compile. A normal variable set right after
# project("llama.cpp") shadows that cache entry, so llama.cpp's option() leaves it off.
if(PROJECT_NAME STREQUAL "llama.cpp")
  set(LLAMA_BUILD_COMMON OFF)
endif()
