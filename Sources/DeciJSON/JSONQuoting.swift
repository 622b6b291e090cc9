// JSON string quoting shared by the safetensors writer (DeciWeights) and the PNG `parameters`
// text (DeciImage). Its own module because those two sit on different sides of the tensor layer:
// DeciImage must not depend on DeciWeights (and so on DeciTensor), nor DeciWeights on the image
// codecs.

/// `s` as a JSON string literal, escaped the way serde_json (the safetensors reference writer) does: `"` and
/// `\` escaped, the named control escapes, other control characters as lowercase `\u00xx`, and
/// everything else (including `/` and non-ASCII) written as is.
package func jsonQuoted(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\u{08}": out += "\\b"
        case "\u{0C}": out += "\\f"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}
