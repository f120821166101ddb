import Foundation
import XCTest

/// The generated fixtures (Fixtures/extra, written by tools/gen_fixtures.py: models trained with
/// fixed seeds, exported with skl2onnx / onnxmltools or built with onnx.helper) against
/// onnxruntime's outputs, with the zoo's rule: labels exact, values within 1e-5 relative /
/// 1e-6 absolute, every row (samples, zeros, -0, large magnitudes, split thresholds and 1 ulp
/// beside them, NaN where the model handles missing values). See Fixtures/extra/README.md and
/// each fixture's meta.json for the ops it covers.
final class ExtraConformanceTests: XCTestCase {
    static var extra: URL {
        Conformance.fixtures.appendingPathComponent("extra")
    }

    /// Every fixture folder, each checked by one test below.
    static let fixtures = [
        "linear_regression", "ridge_two_targets", "linear_svc_3class", "linear_svc_binary", "logreg_3class_softmax",
        "sgd_3class", "mlp_regressor_tanh", "mlp_regressor_logistic", "mlp_binary_tanh", "impute_l2_binarize_logreg",
        "impute_l1_scaler_ridge", "normalizer_max_linreg", "rf_regressor", "extratrees_3class_zipmap", "gbc_3class",
        "xgb_3class", "xgb_binary_softprob", "xgb_regressor", "lgbm_binary", "lgbm_regressor", "dense_gemm_handbuilt",
        "onehot_handbuilt", "onehot_int_pipeline", "column_transformer_churn",
    ]

    func check(_ model: String, file: StaticString = #filePath, line: UInt = #line) throws {
        try Conformance.check(Self.extra.appendingPathComponent(model), file: file, line: line)
    }

    // Linear models (ai.onnx.ml LinearRegressor / LinearClassifier).
    func testLinearRegressionMatchesOnnxruntime() throws { try check("linear_regression") }
    func testRidgeWithTwoTargetsMatchesOnnxruntime() throws { try check("ridge_two_targets") }
    func testLinearSVCThreeClassRawScoresMatchOnnxruntime() throws { try check("linear_svc_3class") }
    func testLinearSVCBinaryWithArrayFeatureExtractorMatchesOnnxruntime() throws { try check("linear_svc_binary") }
    /// skl2onnx's export with multi_class patched from 1 to 0 (the runtime rejects 1; onnxruntime ignores it).
    func testMultinomialLogisticRegressionSoftmaxThenL1NormalizerMatchesOnnxruntime() throws { try check("logreg_3class_softmax") }

    // Dense layers and activations (MatMul / Gemm fused with bias and Relu, Tanh, Sigmoid, Softmax).
    func testSGDClassifierFusedMatMulArgMaxLabelsMatchOnnxruntime() throws { try check("sgd_3class") }
    func testMLPRegressorTanhMatchesOnnxruntime() throws { try check("mlp_regressor_tanh") }
    func testMLPRegressorLogisticMatchesOnnxruntime() throws { try check("mlp_regressor_logistic") }
    func testMLPBinaryClassifierTanhWithSubAndConcatMatchesOnnxruntime() throws { try check("mlp_binary_tanh") }
    func testFusedGemmAndMatMulLayersOnOddShapesMatchOnnxruntime() throws { try check("dense_gemm_handbuilt") }

    // Preprocessing (Imputer, Normalizer L1 / L2 / MAX, Binarizer, Scaler, OneHotEncoder).
    func testImputerL2NormalizerBinarizerPipelineMatchesOnnxruntime() throws { try check("impute_l2_binarize_logreg") }
    func testImputerL1NormalizerScalerPipelineMatchesOnnxruntime() throws { try check("impute_l1_scaler_ridge") }
    func testMaxNormalizerPipelineMatchesOnnxruntime() throws { try check("normalizer_max_linreg") }
    func testOneHotEncoderWithUnknownAndFractionalCodesMatchesOnnxruntime() throws { try check("onehot_handbuilt") }

    // Categorical pipelines as skl2onnx exports them (Gather(axis=1) picks each category column).
    /// int64 input: OneHotEncoder(handle_unknown="ignore") + LogisticRegression; codes never trained on
    /// (negative, large, int64 extremes) give zero encodings.
    func testOneHotPipelineOnInt64CodesWithUnknownAndNegativeCodesMatchesOnnxruntime() throws { try check("onehot_int_pipeline") }
    /// float32 input: ColumnTransformer (StandardScaler on numeric columns, OneHotEncoder on integer-valued
    /// ones, one column dropped) + LogisticRegression; unknown, negative, -0 and fractional codes.
    func testColumnTransformerScalerAndOneHotOnFloatInputMatchesOnnxruntime() throws { try check("column_transformer_churn") }

    // Tree ensembles.
    func testRandomForestRegressorMatchesOnnxruntime() throws { try check("rf_regressor") }
    func testExtraTreesThreeClassWithZipMapMatchesOnnxruntime() throws { try check("extratrees_3class_zipmap") }
    func testGradientBoostingThreeClassSoftmaxMatchesOnnxruntime() throws { try check("gbc_3class") }
    func testXGBoostThreeClassWithMissingValuesMatchesOnnxruntime() throws { try check("xgb_3class") }
    /// Two classes, two base values and SOFTMAX: onnxruntime's binary rules (not xgboost's numbers).
    func testXGBoostTwoClassSoftprobFollowsOnnxruntimeBinaryRules() throws { try check("xgb_binary_softprob") }
    func testXGBoostRegressorWithMissingValuesMatchesOnnxruntime() throws { try check("xgb_regressor") }
    func testLightGBMBinaryWithMissingValuesMatchesOnnxruntime() throws { try check("lgbm_binary") }
    func testLightGBMRegressorMatchesOnnxruntime() throws { try check("lgbm_regressor") }

    /// A fixture added by tools/gen_fixtures.py without a test here (or a test for a removed one) fails.
    func testEveryExtraFixtureFolderHasATest() throws {
        let folders = try FileManager.default.contentsOfDirectory(atPath: Self.extra.path).filter { name in
            FileManager.default.fileExists(atPath: Self.extra.appendingPathComponent(name).appendingPathComponent("meta.json").path)
        }
        XCTAssertEqual(Set(folders), Set(Self.fixtures))
    }
}
