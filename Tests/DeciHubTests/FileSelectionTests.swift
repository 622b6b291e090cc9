@testable import DeciHub
import XCTest

/// Which files of a repo `download` fetches.
final class FileSelectionTests: XCTestCase {
    let sd: Set<String> = ["tokenizer", "text_encoder", "vae", "scheduler", "unet", "safety_checker", "feature_extractor"]
    let base = ["model_index.json", "tokenizer/vocab.json", "tokenizer/merges.txt", "scheduler/scheduler_config.json",
                "text_encoder/config.json", "vae/config.json", "unet/config.json", "feature_extractor/preprocessor_config.json",
                "safety_checker/config.json", "README.md", ".gitattributes", "v1-inference.yaml", "sd-v1-4.ckpt"]

    func testPrefersSafetensorsAndTheRequestedVariant() throws {
        let files = base + ["text_encoder/model.safetensors", "text_encoder/model.fp16.safetensors", "text_encoder/pytorch_model.bin",
                            "vae/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.bin", "vae/diffusion_pytorch_model.msgpack",
                            "unet/diffusion_pytorch_model.fp16.safetensors", "unet/diffusion_pytorch_model.safetensors",
                            "unet/diffusion_pytorch_model.onnx", "safety_checker/model.safetensors", "safety_checker/pytorch_model.bin"]
        let plain = try FileSelection(repoFiles: files, components: sd, variant: nil)
        XCTAssertEqual(Set(plain.files), ["model_index.json", "tokenizer/vocab.json", "tokenizer/merges.txt", "scheduler/scheduler_config.json",
                                          "text_encoder/config.json", "text_encoder/model.safetensors", "vae/config.json",
                                          "vae/diffusion_pytorch_model.safetensors", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
                                          "safety_checker/config.json", "safety_checker/model.safetensors",
                                          "feature_extractor/preprocessor_config.json"])
        let fp16 = try FileSelection(repoFiles: files, components: sd, variant: "fp16")
        XCTAssertTrue(fp16.files.contains("unet/diffusion_pytorch_model.fp16.safetensors"))
        XCTAssertFalse(fp16.files.contains("unet/diffusion_pytorch_model.safetensors"))
        XCTAssertTrue(fp16.files.contains("vae/diffusion_pytorch_model.safetensors"))
        XCTAssertTrue(fp16.notes.contains { $0.hasPrefix("vae/: no 'fp16' variant") }, "\(fp16.notes)")
    }

    func testShardedWeightsKeepTheirIndexAndVariant() throws {
        let files = base + ["text_encoder/model.safetensors", "vae/diffusion_pytorch_model.safetensors",
                            "unet/diffusion_pytorch_model.safetensors.index.json",
                            "unet/diffusion_pytorch_model-00001-of-00002.safetensors", "unet/diffusion_pytorch_model-00002-of-00002.safetensors",
                            "unet/diffusion_pytorch_model.safetensors.index.fp16.json",
                            "unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors", "unet/diffusion_pytorch_model.fp16-00002-of-00002.safetensors"]
        let plain = try FileSelection(repoFiles: files, components: sd, variant: nil).files.filter { $0.hasPrefix("unet/diffusion") }
        XCTAssertEqual(plain, ["unet/diffusion_pytorch_model-00001-of-00002.safetensors", "unet/diffusion_pytorch_model-00002-of-00002.safetensors",
                               "unet/diffusion_pytorch_model.safetensors.index.json"])
        let fp16 = try FileSelection(repoFiles: files, components: sd, variant: "fp16").files.filter { $0.hasPrefix("unet/diffusion") }
        XCTAssertEqual(fp16, ["unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors", "unet/diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
                              "unet/diffusion_pytorch_model.safetensors.index.fp16.json"])
    }

    func testDeciDiffusionSkipsItsUnusedUNet() throws {
        let files = base + ["text_encoder/model.safetensors", "vae/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.safetensors",
                            "flexible_unet/config.json", "flexible_unet/diffusion_pytorch_model.safetensors"]
        let selection = try FileSelection(repoFiles: files, components: sd.union(["flexible_unet"]), variant: nil)
        XCTAssertTrue(selection.files.contains("flexible_unet/diffusion_pytorch_model.safetensors"))
        XCTAssertFalse(selection.files.contains { $0.hasPrefix("unet/") })
        XCTAssertTrue(selection.notes.contains { $0.contains("unet/") }, "\(selection.notes)")
    }

    func testPickleOnlyWeightsAreRefusedWithAClearMessage() {
        let files = base + ["text_encoder/pytorch_model.bin", "vae/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.safetensors"]
        XCTAssertThrowsError(try FileSelection(repoFiles: files, components: sd, variant: nil)) { error in
            XCTAssertTrue("\(error)".contains("text_encoder/ has only pytorch_model.bin"), "\(error)")
            XCTAssertTrue("\(error)".contains("safetensors"), "\(error)")
        }
        // The optional safety checker without safetensors is left out with a note, not an error.
        let ok = base + ["text_encoder/model.safetensors", "vae/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.safetensors",
                         "safety_checker/pytorch_model.bin"]
        let selection = try? FileSelection(repoFiles: ok, components: sd, variant: nil)
        XCTAssertFalse(selection?.files.contains { $0.hasPrefix("safety_checker/") } ?? true)
        XCTAssertTrue(selection?.notes.contains { $0.hasPrefix("safety_checker/ not fetched") } ?? false)
    }

    func testMissingComponentIsNotADiffusersPipeline() {
        XCTAssertThrowsError(try FileSelection(repoFiles: ["model_index.json", "vae/config.json"], components: ["vae"], variant: nil)) { error in
            XCTAssertTrue("\(error)".contains("not a diffusers pipeline"), "\(error)")
        }
    }

    func testVariantNames() {
        XCTAssertNil(FileSelection.variantOf("model.safetensors"))
        XCTAssertEqual(FileSelection.variantOf("model.fp16.safetensors"), "fp16")
        XCTAssertNil(FileSelection.variantOf("diffusion_pytorch_model-00001-of-00002.safetensors"))
        XCTAssertEqual(FileSelection.variantOf("diffusion_pytorch_model.fp16-00001-of-00002.safetensors"), "fp16")
        XCTAssertNil(FileSelection.variantOf("diffusion_pytorch_model.safetensors.index.json"))
        XCTAssertEqual(FileSelection.variantOf("diffusion_pytorch_model.safetensors.index.fp16.json"), "fp16")
    }

    func testGitBlobAndLFSHashesMatchGit() {
        // `printf 'hello\n' | git hash-object --stdin` and `sha256sum`.
        XCTAssertEqual(ContentHash.etag(of: Data("hello\n".utf8), lfs: false), "ce013625030ba8dba906f756967f9e9ca394464a")
        XCTAssertEqual(ContentHash.etag(of: Data("hello\n".utf8), lfs: true), "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03")
    }
}
