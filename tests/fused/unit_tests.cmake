add_executable(fused_tests ${CMAKE_CURRENT_LIST_DIR}/registry_tree_test.cc
                           ${CMAKE_CURRENT_LIST_DIR}/change_notifier_test.cc)
target_link_libraries(fused_tests PRIVATE regfs_fused_lib GTest::gtest_main)
gtest_discover_tests(fused_tests PROPERTIES TIMEOUT 60 LABELS fused)
