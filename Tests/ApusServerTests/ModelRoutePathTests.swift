@testable import ApusServer
import XCTest

final class ModelRoutePathTests: XCTestCase {
    func testInferRouteGivesModelAndAction() {
        XCTAssertEqual(ModelRoutePath("/v2/models/churn/infer"), route("churn", nil, .infer))
    }

    func testBareModelPathIsTheMetadataRoute() {
        XCTAssertEqual(ModelRoutePath("/v2/models/churn"), route("churn", nil, .none))
    }

    func testVersionAndLabelSelectorsComeBeforeTheAction() {
        XCTAssertEqual(ModelRoutePath("/v2/models/churn/versions/3/infer"), route("churn", .version("3"), .infer))
        XCTAssertEqual(ModelRoutePath("/v2/models/churn/labels/stable/ready"), route("churn", .label("stable"), .ready))
        XCTAssertEqual(ModelRoutePath("/v2/models/churn/versions/3"), route("churn", .version("3"), .none))
        // The value is handed over raw: the route answers 400 for a version that is not a number.
        XCTAssertEqual(ModelRoutePath("/v2/models/churn/versions/x1/infer"), route("churn", .version("x1"), .infer))
    }

    func testEveryKnownActionIsRecognisedAndOthersAreNot() {
        let actions: [(String, ModelRoutePath.Action)] = [("infer", .infer), ("ready", .ready), ("feedback", .feedback),
                                                          ("canary", .canary), ("split", .split), ("inferx", .other), ("INFER", .other)]
        for (segment, action) in actions {
            XCTAssertEqual(ModelRoutePath("/v2/models/m/\(segment)")?.action, action, segment)
        }
    }

    func testSelectorWordWithoutAValueIsAnUnknownAction() {
        XCTAssertEqual(ModelRoutePath("/v2/models/m/versions"), route("m", nil, .other))
        XCTAssertEqual(ModelRoutePath("/v2/models/m/labels"), route("m", nil, .other))
    }

    func testEmptySegmentsCountSoATrailingSlashIsAnotherRoute() {
        XCTAssertEqual(ModelRoutePath("/v2/models/m/"), route("m", nil, .other))
        XCTAssertEqual(ModelRoutePath("/v2/models/m/infer/"), route("m", nil, .infer, extra: true))
        XCTAssertEqual(ModelRoutePath("/v2/models/m//infer"), route("m", nil, .other, extra: true))
    }

    func testExtraSegmentsAreFlagged() {
        XCTAssertEqual(ModelRoutePath("/v2/models/m/versions/1/infer/more"), route("m", .version("1"), .infer, extra: true))
    }

    func testPathsWithoutAModelAreRejected() {
        for path in ["/v2/models/", "/v2/models", "/v2/models//infer", "/v2/model/m/infer", "", "/"] {
            XCTAssertNil(ModelRoutePath(path), path)
        }
    }

    func testNonASCIIModelNamesSurviveIntact() {
        XCTAssertEqual(ModelRoutePath("/v2/models/modèle-é/infer")?.model, "modèle-é")
    }

    private func route(_ model: String, _ selector: ModelRoutePath.Selector?, _ action: ModelRoutePath.Action, extra: Bool = false) -> ModelRoutePath? {
        var path = ModelRoutePath("/v2/models/placeholder")
        path?.model = model
        path?.selector = selector
        path?.action = action
        path?.hasExtra = extra
        return path
    }
}
