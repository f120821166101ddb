@testable import ApusRuntime
import XCTest

/// The tree walk reads a node's children through a byte offset rather than the field names (so
/// the comparison result picks the child without a branch); this pins that offset to the layout.
final class TreeEnsembleLayoutTests: XCTestCase {
    func testChildOffsetMatchesPackedNodeLayout() {
        XCTAssertEqual(MemoryLayout<TreeEnsemble.PackedNode>.offset(of: \.trueChild), TreeEnsemble.trueChildOffset)
        XCTAssertEqual(MemoryLayout<TreeEnsemble.PackedNode>.offset(of: \.falseChild), TreeEnsemble.trueChildOffset + 4)
    }
}
