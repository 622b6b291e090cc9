// `POST /v1/images/edits`: the multipart form as an image-to-image or inpainting request.
// OpenAI's mask semantics are the opposite of the library's: OpenAI marks the area to edit with
// fully transparent pixels (alpha 0) of an RGBA PNG, the library repaints where its mask is white.
import DeciDiffusion
import DeciImage
import Foundation

struct OpenAIEditRequest {
    var options: OpenAIImageOptions
    var image: RGBImage
    /// Library convention: white = repaint. nil: image-to-image.
    var mask: RGBImage?
    var strength: Double

    /// Image-to-image changes the whole picture, so it keeps most of it by default; inpainting
    /// regenerates the edited area from noise, as diffusers' inpainting pipeline does by default.
    static let defaultImageToImageStrength = 0.75
    static let defaultInpaintingStrength = 1.0

    init(form: OpenAIMultipartForm, service: any JobQueue) throws(APIError) {
        let fields = form.fields
        options = try OpenAIImageOptions(fields, service: service)
        // `image` (one file) or repeated `image[]` parts; the engine edits one image, the first.
        guard let imageBytes = form.files("image").first ?? form.files("image[]").first else {
            throw .openAI("image: required (a PNG or JPEG file part named image or image[])", param: "image", code: "missing_field")
        }
        let decoded = try Self.decode(imageBytes, param: "image")
        image = decoded.image
        if let maskBytes = form.files("mask").first {
            mask = try Self.mask(from: try Self.decode(maskBytes, param: "mask"), matching: image)
        } else if let alpha = decoded.alpha, alpha.contains(0) {
            // OpenAI's older edit models take the image's own transparent pixels as the mask when none is sent.
            mask = try Self.libraryMask(alpha: alpha, width: image.width, height: image.height)
        }
        let defaultStrength = mask == nil ? Self.defaultImageToImageStrength : Self.defaultInpaintingStrength
        strength = try fields.double("strength") ?? defaultStrength
    }

    var generationRequest: GenerationRequest {
        var request = options.generationRequest
        request.initImage = image
        request.mask = mask
        request.strength = strength
        return request
    }

    static func decode(_ bytes: [UInt8], param: String) throws(APIError) -> DecodedImage {
        do { return try ImageFile.decode(bytes, path: param) } catch {
            throw .openAI("\(param): cannot decode the file as PNG or JPEG (\(error))", param: param)
        }
    }

    /// An OpenAI mask (alpha 0 = edit) as the library's (white = repaint). A mask without an alpha
    /// channel has nothing to say in OpenAI's terms, and its luminance would mean the opposite of
    /// what an A1111 user expects, so it is refused rather than guessed at.
    static func mask(from decoded: DecodedImage, matching image: RGBImage) throws(APIError) -> RGBImage {
        guard let alpha = decoded.alpha else {
            throw .openAI("mask: the image has no alpha channel; an OpenAI mask is a PNG with an alpha channel whose fully transparent pixels (alpha 0) mark the area to edit",
                          param: "mask")
        }
        guard decoded.image.width == image.width, decoded.image.height == image.height else {
            throw .openAI("mask: \(decoded.image.width)x\(decoded.image.height) does not match the image's \(image.width)x\(image.height)",
                          param: "mask")
        }
        return try libraryMask(alpha: alpha, width: image.width, height: image.height)
    }

    static func libraryMask(alpha: [UInt8], width: Int, height: Int) throws(APIError) -> RGBImage {
        do { return try RGBImage(gray: alpha.map { $0 == 0 ? 255 : 0 }, width: width, height: height) } catch {
            throw .openAI("mask: \(error)", param: "mask")
        }
    }
}
