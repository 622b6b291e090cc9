// Reading and decoding a component's config.json into errors that name the file and key.
import Foundation

/// Decodes a `config.json`, turning decoding failures into config errors that name the file and the
/// key path.
func decodeConfig<T: Decodable>(_ type: T.Type, from data: Data, source: String) throws(ModelError) -> T {
    do {
        return try JSONDecoder().decode(T.self, from: data)
    } catch let error as ModelError {
        throw .config("\(source): \(error.description.replacingOccurrences(of: "config: ", with: ""))")
    } catch let DecodingError.keyNotFound(key, ctx) {
        throw .config("\(source): missing key '\(path(ctx.codingPath + [key]))'")
    } catch let DecodingError.typeMismatch(_, ctx) {
        throw .config("\(source): '\(path(ctx.codingPath))': \(ctx.debugDescription)")
    } catch let DecodingError.valueNotFound(_, ctx) {
        throw .config("\(source): '\(path(ctx.codingPath))' is null")
    } catch let DecodingError.dataCorrupted(ctx) {
        throw .config("\(source): \(ctx.codingPath.isEmpty ? "" : "'\(path(ctx.codingPath))': ")\(ctx.debugDescription)")
    } catch {
        throw .config("\(source): \(error)")
    }
}

/// The bytes of a component's `config.json`; a read failure is a config error naming the file.
func readConfigFile(_ url: URL) throws(ModelError) -> Data {
    do { return try Data(contentsOf: url) } catch {
        throw .config("\(url.path): cannot read: \(error.localizedDescription)")
    }
}

private func path(_ keys: [CodingKey]) -> String {
    keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
}
