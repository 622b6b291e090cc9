// A multipart/form-data body (the edit route's) as named parts, parsed by MultipartKit. Text parts
// become ``OpenAIFields``; file parts (image, image[], mask) are kept as bytes.
import Foundation
import MultipartKit
import NIOCore

struct OpenAIMultipartForm {
    /// Every part's body, by part name, in body order.
    var parts: [String: [[UInt8]]] = [:]

    /// Parses `body` with the boundary of `contentType`; a body that is not multipart/form-data, has
    /// no usable boundary, or does not parse is a 400 that says which.
    init(body: ByteBuffer, contentType: String?) throws(APIError) {
        let boundary = try Self.boundary(of: contentType)
        let parser = MultipartParser(boundary: boundary)
        var collected: [MultipartPart] = []
        var headers = HTTPHeaders()
        var partBody = ByteBuffer()
        parser.onHeader = { name, value in headers.replaceOrAdd(name: name, value: value) }
        parser.onBody = { chunk in partBody.writeBuffer(&chunk) }
        parser.onPartComplete = {
            collected.append(MultipartPart(headers: headers, body: partBody))
            headers = HTTPHeaders()
            partBody = ByteBuffer()
        }
        do { try parser.execute(body) } catch {
            throw .openAI("the multipart/form-data body is malformed (\(error))", param: nil, code: "invalid_multipart")
        }
        guard !collected.isEmpty else {
            throw .openAI("the multipart/form-data body has no complete part (is the boundary \"\(boundary)\" right, and the body whole?)",
                          param: nil, code: "invalid_multipart")
        }
        for part in collected {
            // A part without a name cannot be any field; it is skipped like an unknown one.
            guard let name = part.name, !name.isEmpty else { continue }
            parts[name, default: []].append(Array(part.body.readableBytesView))
        }
    }

    /// The `boundary` parameter of a `multipart/form-data` Content-Type (RFC 2046: 1-70 characters).
    static func boundary(of contentType: String?) throws(APIError) -> String {
        guard let contentType else {
            throw .openAI("this route takes a multipart/form-data body (no Content-Type was sent)", param: nil, code: "invalid_multipart")
        }
        let params = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard params.first?.lowercased() == "multipart/form-data" else {
            throw .openAI("this route takes a multipart/form-data body, not \(params.first ?? "")", param: nil, code: "invalid_multipart")
        }
        let value = params.dropFirst().first { $0.lowercased().hasPrefix("boundary=") }
            .map { String($0.dropFirst("boundary=".count)).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        guard let value, (1...70).contains(value.count) else {
            throw .openAI("the multipart/form-data Content-Type needs a boundary of 1-70 characters", param: nil, code: "invalid_multipart")
        }
        return value
    }

    /// The text fields: the first part of each name, as UTF-8.
    var fields: OpenAIFields {
        OpenAIFields(storage: .form(parts.compactMapValues { $0.first.map { String(decoding: $0, as: UTF8.self) } }))
    }

    /// The file parts named `name`, in body order.
    func files(_ name: String) -> [[UInt8]] { parts[name] ?? [] }
}
