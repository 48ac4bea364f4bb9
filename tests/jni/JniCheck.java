import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import org.trmedge.demo.TrmNative;

/** Drives libtrm_jni.so as the app does: java -Djava.library.path=DIR JniCheck MODE BUNDLE [ARGS]
 *    solve BUNDLE PUZZLES HALTING   one JSON line per puzzle: answer, steps, halting probabilities, ms
 *    stop BUNDLE PUZZLE N           fixed halting, the listener says stop after step N
 *    error BUNDLE PUZZLE            prints the exception's class and message
 *    views BUNDLE PUZZLES K POLICY [AGREE WAVE BUDGET]   one JSON line per puzzle from solveViews
 *    arc BUNDLE K POLICY AGREE WAVE (TASK.json TASK_ID)...   one JSON line per task from solveArc; an
 *                                   IllegalArgumentException's class and message as a line instead */
public final class JniCheck {
    public static void main(String[] args) throws Exception {
        System.loadLibrary("trm_jni");
        String mode = args[0];
        if (mode.equals("error")) {
            try {
                long h = TrmNative.open(args[1], 1);
                try {
                    TrmNative.solve(h, args[2], args.length > 3 ? args[3] : "q_halt", 0.5, null);
                } finally {
                    TrmNative.close(h);
                }
                System.out.println("no error");
            } catch (IllegalArgumentException e) {
                System.out.println(e.getClass().getName() + ": " + e.getMessage());
            }
            return;
        }
        if (mode.equals("views")) {
            long h = TrmNative.open(args[1], 1);
            try {
                int[] o = new int[3];
                for (int i = 0; i < 3; i++) o[i] = args.length > 5 + i ? Integer.parseInt(args[5 + i]) : 0;
                for (String puzzle : Files.readAllLines(Paths.get(args[2]))) {
                    System.out.println(TrmNative.solveViews(h, puzzle, "q_halt", 0.5, Integer.parseInt(args[3]), args[4],
                                                            o[0], o[1], o[2]));
                }
            } finally {
                TrmNative.close(h);
            }
            return;
        }
        if (mode.equals("arc")) {
            long h = TrmNative.open(args[1], 1);
            try {
                int k = Integer.parseInt(args[2]), agree = Integer.parseInt(args[4]), wave = Integer.parseInt(args[5]);
                for (int i = 6; i + 1 < args.length; i += 2) {
                    String task = new String(Files.readAllBytes(Paths.get(args[i])), StandardCharsets.UTF_8);
                    try {
                        System.out.println(TrmNative.solveArc(h, task, args[i + 1], k, args[3], agree, wave, 0));
                    } catch (IllegalArgumentException e) {
                        System.out.println(e.getClass().getName() + ": " + e.getMessage());
                    }
                }
            } finally {
                TrmNative.close(h);
            }
            return;
        }
        long h = TrmNative.open(args[1], 1);
        try {
            System.out.println("{\"grid\": " + TrmNative.gridSize(h) + "}");
            List<String> puzzles = mode.equals("stop") ? List.of(args[2]) : Files.readAllLines(Paths.get(args[2]));
            String halting = mode.equals("stop") ? "fixed" : args[3];
            int stopAfter = mode.equals("stop") ? Integer.parseInt(args[3]) : Integer.MAX_VALUE;
            for (String puzzle : puzzles) {
                List<String> steps = new ArrayList<>();
                String answer = TrmNative.solve(h, puzzle, halting, 0.5, (step, text, p, ms) -> {
                    steps.add(String.format(Locale.ROOT, "{\"step\": %d, \"answer\": \"%s\", \"p\": %.9g, \"ms\": %.3f}",
                                            step, text, p, ms));
                    return step < stopAfter;
                });
                System.out.println("{\"answer\": \"" + answer + "\", \"trace\": [" + String.join(", ", steps) + "]}");
            }
        } finally {
            TrmNative.close(h);
        }
    }
}
