#include <gtest/gtest.h>

#include "runtime/graph.hpp"
#include "visage/error.hpp"

using visage::rt::Graph;
using visage::rt::Node;

TEST(Graph, TopologicalSortOrdersProducersFirst) {
  Graph g;
  g.inputs.push_back({"x"});
  g.outputs.push_back({"z"});
  g.nodes.push_back(Node{"Relu", "second", {"y"}, {"z"}, {}});
  g.nodes.push_back(Node{"Relu", "first", {"x"}, {"y"}, {}});
  visage::rt::topological_sort(g);
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[0].name, "first");
  EXPECT_EQ(g.nodes[1].name, "second");
}

TEST(Graph, MissingProducerIsAModelError) {
  Graph g;
  g.source = "broken.onnx";
  g.outputs.push_back({"z"});
  g.nodes.push_back(Node{"Relu", "lonely", {"nowhere"}, {"z"}, {}});
  try {
    visage::rt::topological_sort(g);
    FAIL() << "expected an error";
  } catch (const visage::Error& e) {
    EXPECT_EQ(e.kind(), visage::ErrorKind::model);
    EXPECT_NE(std::string(e.what()).find("lonely"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("broken.onnx"), std::string::npos);
  }
}

TEST(Graph, DeadNodesAreRemoved) {
  Graph g;
  g.inputs.push_back({"x"});
  g.outputs.push_back({"y"});
  g.nodes.push_back(Node{"Relu", "used", {"x"}, {"y"}, {}});
  g.nodes.push_back(Node{"Relu", "unused", {"x"}, {"w"}, {}});
  visage::rt::remove_dead_nodes(g);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].name, "used");
}
