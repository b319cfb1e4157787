package io.stowage.runtime.cli;

import io.stowage.placement.gguf.GgufFile;
import io.stowage.placement.gguf.GgufFormatException;
import io.stowage.placement.gguf.GgufReader;
import io.stowage.runtime.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Set;

/** {@code tokenize --model M --text T [--bos]}: the token ids of a text as a JSON array. */
final class TokenizeCommand {
    static final String USAGE = """
            usage: ./stowage tokenize --model MODEL.gguf --text TEXT [--bos]

            Prints the ids the model's own tokenizer (from the GGUF header) gives TEXT, as a JSON array.
            Special tokens in the text (e.g. <|im_start|>) are recognised. No BOS is added unless --bos.
            """;

    private TokenizeCommand() {}

    static int run(String[] argv, PrintStream out, PrintStream err) {
        Args args = Args.parse("tokenize", argv, Set.of("model", "text"), Set.of("bos", "help"));
        if (args.flag("help")) {
            out.print(USAGE);
            return 0;
        }
        if (!args.positional().isEmpty()) {
            throw new UsageException("tokenize: unexpected arguments " + args.positional());
        }
        Path path = Path.of(args.required("tokenize", "model"));
        String text = args.required("tokenize", "text");
        GgufFile file;
        try {
            file = GgufReader.readFile(path);
        } catch (GgufFormatException | IOException e) {
            err.println("tokenize: cannot read " + path + ": " + e.getMessage());
            return 1;
        }
        Tokenizer tokenizer = ModelTokenizer.of(file, "tokenize");
        out.println(Json.compact(tokenizer.encode(text, args.flag("bos"))));
        return 0;
    }
}
