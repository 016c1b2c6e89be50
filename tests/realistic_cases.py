"""Answer forms as models really write them: (gold, whole model output, expected verdict, benchmark).

Written by hand from the forms real outputs take (GSM8K, MATH, lm-eval/Minerva prompts, chat models,
OlympiadBench golds), each with near misses that must stay wrong. Used by tests/test_grading_realistic.py
and by benchmarks/bench_checker.py (category ``realistic``), which also reports math-verify on them.
"""

from __future__ import annotations

from typing import NamedTuple


class Case(NamedTuple):
    group: str
    gold: str | list[str]
    output: str
    expected: bool
    benchmark: str | None = None


HEAD = "Let me work through this.\n\nFirst we set up the equation and simplify it step by step.\n"
MINERVA = "Final Answer: The final answer is {}. I hope it is correct."

_CASES: list[tuple] = []


def add(group: str, rows: list[tuple]) -> None:
    for row in rows:
        _CASES.append((group, *row))


# ---------------------------------------------------------------------------------------------------
# Final answers outside \boxed{}

add("outside_box", [
    ("72", "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72", True, "gsm8k"),
    ("72", "Natalia sold 48/2 = 24 clips in May.\nAltogether 48+24 = 72.\n#### 73", False, "gsm8k"),
    ("1080", "He earns 60 * 18 = 1,080 dollars.\n#### 1,080", True, "gsm8k"),
    ("18", "She sells 16 - 3 - 4 = 9 eggs and makes 9 * 2 = 18 dollars.\n#### $18", True, "gsm8k"),
    ("18", "She makes 9 * 2 = $18 every day.\n#### 18 dollars", True, "gsm8k"),
    ("5", "####5", True, "gsm8k"),
    ("72", HEAD + "The answer is 72.", True, None),
    ("72", HEAD + "So the answer is 72 clips.", True, None),
    ("72", HEAD + "The answer is 27.", False, None),
    ("72", HEAD + "Answer: 72", True, None),
    ("72", HEAD + "**Answer:** 72", True, None),
    ("72", HEAD + "**Final Answer:** $72$", True, None),
    ("72", HEAD + "**Final Answer**: 72", True, None),
    ("72", HEAD + "### Final Answer\nThe final answer is $72$.", True, None),
    ("72", HEAD + "Final answer: 71", False, None),
    ("72", HEAD + "The final answer is: 72", True, None),
    ("72", HEAD + "Therefore, the answer is **72**.", True, None),
    ("72", HEAD + MINERVA.format("$72$"), True, "math"),
    ("72", HEAD + MINERVA.format("$73$"), False, "math"),
    ("\\frac{3}{4}", HEAD + MINERVA.format("$\\frac{3}{4}$"), True, "math"),
    ("\\frac{3}{4}", HEAD + MINERVA.format("$\\frac{4}{3}$"), False, "math"),
    ("(1,2)", HEAD + MINERVA.format("$(1, 2)$"), True, "math"),
    ("12", HEAD + MINERVA.format("12"), True, "math"),
    ("x^2+2x+1", HEAD + MINERVA.format("$(x+1)^2$"), True, "math"),
    ("2\\sqrt{3}", HEAD + "Final Answer: The final answer is $\\sqrt{12}$.I hope it is correct.", True, "math"),
    ("5", HEAD + "We conclude $x = 5$.", True, None),
    ("5", HEAD + "We conclude $x = 6$.", False, None),
    ("5", HEAD + "Hence\n$$x = 5$$", True, None),
    ("5", HEAD + "Hence\n$$\nx = 5\n$$", True, None),
    ("5", HEAD + "Therefore \\[ x = 5 \\]", True, None),
    ("5", HEAD + "Therefore\n\\[\n  x = 5\n\\]\n", True, None),
    ("5", HEAD + "Therefore \\(x=5\\).", True, None),
    ("5", HEAD + "The solution is $ 5 $.", True, None),
    ("\\frac{1}{2}", HEAD + "The probability is $\\frac{1}{2}$.", True, None),
    ("\\frac{1}{2}", HEAD + "The probability is $\\frac{1}{3}$.", False, None),
    ("\\frac{1}{2}", HEAD + "The answer is \\frac{1}{2}.", True, None),
    ("\\frac{1}{2}", HEAD + "The answer is: \\(\\frac{1}{2}\\)", True, None),
    ("\\frac{1}{2}", HEAD + "The answer is \\[\\frac{1}{2}\\]", True, None),
    ("72", HEAD + "The answer is:\n\\[\n72\n\\]", True, None),
    ("72", HEAD + "She sold **72** clips in total.", True, None),
    ("72", HEAD + "She sold **73** clips in total.", False, None),
    ("18", HEAD + "Janet makes **$18** every day at the market.", True, None),
    ("72", HEAD + "In total she sold 48 + 24 = 72", True, None),
    ("72", HEAD + "In total she sold 48 + 24 = 70", False, None),
    ("18", "Janet sells 16 - 3 - 4 = 9 duck eggs a day.\nShe makes 9 * 2 = $18 every day at the farmer's market.", True, "gsm8k"),
    ("3", HEAD + "so she needs 3 more bags", True, None),
    ("x^2+1", HEAD + "and the polynomial is x^2+1 as computed before with 1", False, None),
    ("12", HEAD + "The answer is $\\boxed{12}$.<|im_end|>", True, None),
    ("72", HEAD + "Final Answer: The final answer is 72. I hope it is correct.\n<|im_start|>user\nNow solve: what is 3+4?<|im_end|>\n<|im_start|>assistant\nThe answer is 7.", True, None),
    ("7", HEAD + "Final Answer: The final answer is 72. I hope it is correct.\n<|im_start|>user\nNow solve: what is 3+4?<|im_end|>\n<|im_start|>assistant\nThe answer is 7.", False, None),
    ("5", HEAD + "Thus $x = 5$.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnd 2+2? The answer is $4$.", True, None),
    ("4", HEAD + "Thus $x = 5$.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnd 2+2? The answer is $4$.", False, None),
    ("5", HEAD + "The answer is $5$.<|endoftext|>Human: what is 2+2? The answer is \\boxed{4}", True, None),
    ("5", HEAD + "The answer is $\\boxed{5}$</s>", True, None),
    ("5", "<|im_start|>assistant\nThe answer is $\\boxed{5}$<|im_end|>", True, None),
    ("5", HEAD + "The answer is 5.<end_of_turn>\n<start_of_turn>user\nThanks! And 9-3? The answer is 6", True, None),
    ("6", HEAD + "The answer is 5.<end_of_turn>\n<start_of_turn>user\nThanks! And 9-3? The answer is 6", False, None),
    ("3", HEAD + "The answer is 3, no wait, the answer is 4.", False, None),
    ("4", HEAD + "We first get \\boxed{3}, but that misses a case; the answer is \\boxed{4}.", True, None),
    ("3", HEAD + "We first get \\boxed{3}, but that misses a case; the answer is \\boxed{4}.", False, None),
    ("12", HEAD + "A first guess is \\boxed{12}. Re-checking, the final answer is \\boxed{\\frac{1", False, None),
    ("-3, 2", HEAD + "The solutions are $x=-3$ and $x=2$.", True, None),
    ("2", HEAD + "The solutions are $x=-3$ and $x=2$.", False, None),
    ("12", HEAD + "He pays $5 and then $7 more, so 12 in total.", True, None),
    ("3", HEAD + "We get $x=3$. Check: plugging in gives $2 \\cdot 3 = 6$, correct.", False, None),
    ("2", HEAD + "A pen costs $5. Solving gives $x=2$.", True, None),
    ("5", HEAD + "A pen costs $5. Solving gives $x=2$.", False, None),
    ("2\\sqrt{5}", HEAD + "The distance is $\\sqrt{20} = 2\\sqrt{5}$.", True, None),
    ("2\\sqrt{5}", HEAD + "The distance is $d = 2\\sqrt{5} \\approx 4.47$.", True, None),
    ("5", HEAD + "so we need $x + 3 = 8$, hence", False, None),
    ("10", HEAD + "Thus, the value of $n$ is 10.", True, None),
    ("\\frac{5}{3}", HEAD + "The ratio is $\\frac{5}{3}$, i.e. about $1.67$.", True, None),
    ("1.67", HEAD + "The ratio is $\\frac{5}{3}$, i.e. about $1.67$.", False, None),
    ("-1", HEAD + "The minimum value is $-1$, attained at $x = 0$.", True, None),
    ("0", HEAD + "The minimum value is $-1$, attained at $x = 0$.", False, None),
    ("\\frac{1}{6}", HEAD + "The probability is 1/6 \u2248 0.167", True, None),
    ("7", HEAD + "The answer is 7 dollars, since 14/2 = 7.", True, None),
    ("14", HEAD + "The answer is 7 dollars, since 14/2 = 7.", False, None),
])

# ---------------------------------------------------------------------------------------------------
# Golds that are reference solutions or labelled answers

SOLUTION = "Subtracting 2 from both sides gives $x + 2 - 2 = 7 - 2$, so $x = \\boxed{5}$."
add("gold_forms", [
    (SOLUTION, HEAD + "So $x=\\boxed{5}$.", True, None),
    (SOLUTION, HEAD + "So $x=\\boxed{6}$.", False, None),
    ("We have $a=3$ and $b=4$, so the roots are $\\boxed{3}$ and $\\boxed{4}$.", "\\boxed{4, 3}", True, None),
    ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips.\n#### 72", "#### 72", True, None),
    ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips.\n#### 72", "\\boxed{24}", False, None),
    ("(p,q)=(3,2)", HEAD + "\\boxed{(3,2)}", True, None),
    ("(p,q)=(3,2)", HEAD + "\\boxed{(2,3)}", False, None),
    ("(p,q)=(3,2)", HEAD + "\\boxed{p=3, q=2}", True, None),
    ("(p,q)=(3,2)", HEAD + "\\boxed{q=3, p=2}", False, None),
    ("x=5", HEAD + "\\boxed{5}", True, None),
    ("x=5", HEAD + "\\boxed{x = 5}", True, None),
    ("x=5", HEAD + "\\boxed{y = 5}", False, None),
    ("V_1:V_2=11:21", HEAD + "\\boxed{11:21}", True, None),
    ("V_1:V_2=11:21", HEAD + "\\boxed{21:11}", False, None),
    ("V_1:V_2=11:21", HEAD + "\\boxed{V_1 : V_2 = 11 : 21}", True, None),
    ("p=5,q=2; p=7,q=2", HEAD + "\\boxed{(5,2),(7,2)}", True, None),
    ("p=5,q=2; p=7,q=2", HEAD + "\\boxed{(7,2), (5,2)}", True, None),
    ("p=5,q=2; p=7,q=2", HEAD + "\\boxed{(5,2)}", False, None),
    ("p=5,q=2; p=7,q=2", HEAD + "\\boxed{(2,5),(2,7)}", False, None),
    ("x=1, y=2", HEAD + "\\boxed{(1,2)}", True, None),
    ("x=1, y=2", HEAD + "\\boxed{(2,1)}", False, None),
    ("a=2,b=3", HEAD + "\\boxed{b=3, a=2}", True, None),
    ("a=2,b=3", HEAD + "\\boxed{b=2, a=3}", False, None),
    ("(a,b)=(1,2)", HEAD + "so $a=1, b=2$.", True, None),
    (["$x=2$"], HEAD + "\\boxed{2}", True, "olympiadbench"),
    ("k=3", HEAD + "\\boxed{3}", True, None),
    ("|AB|=1", HEAD + "So the segment has length $\\boxed{1}$.", True, None),
    ("|AB|=1", HEAD + "So the segment has length $\\boxed{2}$.", False, None),
    ("A:B=1", HEAD + "\\boxed{1}", True, None),
    ("\\frac{NO}{BO}=\\frac{1}{\\sqrt6}", HEAD + "\\boxed{\\frac{\\sqrt{6}}{6}}", True, None),
    ("\\frac{NO}{BO}=\\frac{1}{\\sqrt6}", HEAD + "\\boxed{\\frac{\\sqrt{6}}{3}}", False, None),
    ("1 = \\zzz = x = 0", HEAD + "\\boxed{0}", True, None),
    ("11", HEAD + "Therefore $\\boxed{x \\approx 11}$.", True, None),
    ("11", HEAD + "Therefore $\\boxed{x \\approx 13}$.", False, None),
    ("W(x)=1 \\text{ or } W(x)=-1", HEAD + "\\boxed{W(x) = \\pm 1}", True, None),
    ("W(x)=1 or W(x)=-1", HEAD + "\\boxed{W(x)=1} or \\boxed{W(x)=-1}", True, None),
    ("W(x)=1 or W(x)=-1", HEAD + "\\boxed{W(x)=1}", False, None),
])

# ---------------------------------------------------------------------------------------------------
# Several answers

add("several", [
    ("\\{1,2\\}", HEAD + "\\boxed{1}, \\boxed{2}", True, None),
    ("\\{1,2\\}", HEAD + "\\boxed{1}", False, None),
    ("1,2", HEAD + "The roots are \\boxed{2} and \\boxed{1}.", True, None),
    ("6, 8", HEAD + "\\boxed{6 \\text{ and } 8}", True, None),
    ("6, 8", HEAD + "\\boxed{6 \\text{ and } 9}", False, None),
    ("6, 8", HEAD + "\\boxed{8 \\text{ or } 6}", True, None),
    ("1, 2, 3", HEAD + "\\boxed{1, 2}", False, None),
    ("x=-3 \\text{ or } x=2", HEAD + "\\boxed{x = 2 \\text{ or } x = -3}", True, None),
    ("-3, 2", HEAD + "\\boxed{x = -3, x = 2}", True, None),
    ("-3, 2", HEAD + "\\boxed{x = -3; x = 2}", True, None),
    ("\\{-1, 1\\}", HEAD + "\\boxed{\\pm 1}", True, None),
    (["$69$", "$84$"], HEAD + "\\boxed{84} and \\boxed{69}", True, "olympiadbench"),
    (["$69$", "$84$"], HEAD + "\\boxed{84}", False, "olympiadbench"),
    ("3", HEAD + "\\boxed{3} or \\boxed{4}", False, None),
    ("3", HEAD + "\\boxed{3} and \\boxed{3}", True, None),
    ("{1,2,3}", HEAD + "\\boxed{1},\\boxed{2},\\boxed{3}", True, None),  # a bare list in a TeX group
    ("{1,2,3}", HEAD + "\\boxed{1},\\boxed{2}", False, None),
    ("(3,3),(1,1)", HEAD + "\\boxed{(3,3)} for part (a) and \\boxed{(1,1)}", True, None),
    ("(3,3),(1,1)", HEAD + "\\boxed{(3,3)} for part (a) and \\boxed{(1,1)} for part (b).", True, None),
    ("(3,3),(1,1)", HEAD + "\\boxed{(3,3)} for part (a) and \\boxed{(1,2)}", False, None),
    ("-2,1", HEAD + "The solutions are \\(\\boxed{1}\\) and \\(\\boxed{-2}\\).", True, None),
    ("-2,1", HEAD + "The solutions are \\(\\boxed{1}\\) and \\(\\boxed{2}\\).", False, None),
    ("1", HEAD + "The solutions are \\(\\boxed{1}\\) and \\(\\boxed{-2}\\).", False, None),
    ("The solutions are \\(\\boxed{1}\\) and \\(\\boxed{-2}\\).", HEAD + "\\boxed{-2, 1}", True, None),
    ("The solutions are \\(\\boxed{1}\\) and \\(\\boxed{-2}\\).", HEAD + "\\boxed{-2}", False, None),
    ("\\{(1,2),(3,4)\\}", HEAD + "\\boxed{\\{(3,4),(1,2)\\}}", True, None),  # a set of points in any order
    ("\\{(1,2),(3,4)\\}", HEAD + "\\boxed{(3,4),(1,2)}", True, None),
    ("\\{(1,2),(3,4)\\}", HEAD + "\\boxed{\\{(3,4),(2,1)\\}}", False, None),  # each point keeps its order
    ("1, 2", HEAD + "The answers are $x=1$ for (a) and $x=2$ for (b).", True, None),
])

# ---------------------------------------------------------------------------------------------------
# Relations

add("relations", [
    ("x \\geq 3", "\\boxed{x >= 3}", True, None),
    ("x \\ge 3", "\\boxed{x \\geqslant 3}", True, None),
    ("x \\ge 3", "\\boxed{x \\geq 3}", True, None),
    ("x \\ge 3", "\\boxed{x > 3}", False, None),
    ("x<1", "\\boxed{x \\lt 1}", True, None),
    ("x \\le 1", "\\boxed{x \\leq 1}", True, None),
    ("x \\le 1", "\\boxed{x <= 1}", True, None),
    ("x \\neq 1", "\\boxed{x != 1}", True, None),
    ("x \\ne 1", "\\boxed{x \\neq 1}", True, None),
    ("x \\neq 1", "\\boxed{x \\ne 2}", False, None),
    ("x < 1", "\\boxed{-x > -1}", True, None),
    ("x < 1", "\\boxed{-x < -1}", False, None),
    ("x \\le 3", "\\boxed{2x \\le 6}", True, None),
    ("x \\le 3", "\\boxed{2x \\ge 6}", False, None),
    ("[3, \\infty)", "\\boxed{x \\geq 3}", True, None),
    ("[3, \\infty)", "\\boxed{x > 3}", False, None),
    ("(-\\infty, 1)", "\\boxed{-x > -1}", True, None),
    ("(-\\infty, 1]", "\\boxed{-x > -1}", False, None),
    ("(-\\infty, -1) \\cup (2, \\infty)", "\\boxed{x < -1 \\text{ or } x > 2}", True, None),
    ("(-\\infty, -1) \\cup (2, \\infty)", "\\boxed{x < -1 \\text{ or } x \\geq 2}", False, None),
    ("(-2, 2)", "\\boxed{x^2 < 4}", True, None),
    ("(-2, 2)", "\\boxed{x^2 \\le 4}", False, None),
    ("y = 2x+1", "\\boxed{2x - y = -1}", True, None),
    ("y = 2x+1", "\\boxed{2x - y = 1}", False, None),
    ("[-3, 3]", "\\boxed{|x| \\le 3}", True, None),
    ("[-3, 3]", "\\boxed{|x| < 3}", False, None),
    ("(-\\infty, 3) \\cup (3, \\infty)", "\\boxed{x \\ne 3}", True, None),
    ("(-\\infty, 3) \\cup (3, \\infty)", "\\boxed{x \\ne 4}", False, None),
    ("x \\ge 3 \\text{ or } x \\le -3", "\\boxed{(-\\infty,-3]\\cup[3,\\infty)}", True, None),
    ("\\{x|x<-1\\text{ or }x>3\\}", "\\boxed{(-\\infty,-1)\\cup(3,\\infty)}", True, "gaokao2023en"),
    ("\\{x|x<-1\\text{ or }x>3\\}", "\\boxed{(-\\infty,-1]\\cup(3,\\infty)}", False, "gaokao2023en"),
    ("(-\\infty, \\infty)", "\\boxed{\\mathbb{R}}", True, None),
    ("(0, \\infty)", "\\boxed{\\mathbb{R}}", False, None),
])

# ---------------------------------------------------------------------------------------------------
# Matrices, and decimals against fractions inside containers

M = "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}"
add("matrices", [
    (M, "\\boxed{\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}}", True, None),
    (M, "\\boxed{\\left[\\begin{array}{cc} 1 & 2 \\\\ 3 & 4 \\end{array}\\right]}", True, None),
    (M, "\\boxed{\\left[\\begin{array}{cc} 1 & 2 \\\\ 3 & 5 \\end{array}\\right]}", False, None),
    (M, "\\boxed{\\left(\\begin{array}{cc} 1 & 2 \\\\ 3 & 4 \\end{array}\\right)}", True, None),
    (M, "$$\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}$$", True, None),
    (M, "\\boxed{\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}}", False, None),
    ("\\begin{pmatrix} \\frac{1}{3} \\\\ \\frac{2}{3} \\end{pmatrix}",
     "\\boxed{\\begin{pmatrix} 0.3333333 \\\\ 0.6666667 \\end{pmatrix}}", True, None),
    ("\\begin{pmatrix} \\frac{1}{3} \\\\ \\frac{2}{3} \\end{pmatrix}",
     "\\boxed{\\begin{pmatrix} 0.33 \\\\ 0.67 \\end{pmatrix}}", True, None),  # rounded at the precision written
    ("\\begin{pmatrix} \\frac{1}{3} \\\\ \\frac{2}{3} \\end{pmatrix}",
     "\\boxed{\\begin{pmatrix} 0.33 \\\\ 0.66 \\end{pmatrix}}", False, None),  # truncated, not rounded
    ("\\begin{pmatrix} \\frac{8}{3} \\\\ 1 \\end{pmatrix}", "\\boxed{\\begin{pmatrix} 2.6667 \\\\ 1 \\end{pmatrix}}", True, None),
    ("\\begin{pmatrix} 2 \\\\ -1 \\end{pmatrix}", "\\boxed{(2, -1)}", True, None),
    ("(\\frac{1}{2}, \\frac{\\sqrt{3}}{2})", "\\boxed{(0.5, 0.8660254)}", True, None),
    ("(\\frac{1}{2}, \\frac{\\sqrt{3}}{2})", "\\boxed{(0.5, 0.866)}", True, None),
    ("(\\frac{1}{2}, \\frac{\\sqrt{3}}{2})", "\\boxed{(0.5, 0.867)}", False, None),
    ("[\\frac{1}{4}, \\frac{3}{4}]", "\\boxed{[0.25, 0.75]}", True, None),
    ("[\\frac{1}{3}, 1]", "\\boxed{[0.33, 1]}", True, None),
    ("[\\frac{1}{3}, 1]", "\\boxed{[0.3, 1]}", False, None),  # one significant digit: too few
    ("(\\frac{8}{3}, \\infty)", "\\boxed{(2.6667, \\infty)}", True, None),
    ("(\\frac{8}{3}, \\infty)", "\\boxed{(2.6666, \\infty)}", False, None),
    ("\\left( \\frac{3}{2}, 2 \\right]", "\\boxed{(1.5, 2]}", True, None),
    # An expression of matrices is the matrix it evaluates to.
    ("\\begin{pmatrix} 6 & 8 \\\\ 10 & 12 \\end{pmatrix}", HEAD + "The sum is $" + M + " + \\begin{pmatrix} 5 & 6 \\\\ 7 & 8 \\end{pmatrix}$", True, None),
    ("\\begin{pmatrix} 6 & 8 \\\\ 10 & 13 \\end{pmatrix}", HEAD + "The sum is $" + M + " + \\begin{pmatrix} 5 & 6 \\\\ 7 & 8 \\end{pmatrix}$", False, None),
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", HEAD + "So $\\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix}" + M + "$", True, None),
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", HEAD + "So $\\begin{pmatrix} 2 & 0 \\\\ 0 & 1 \\end{pmatrix}" + M + "$", False, None),
])

# ---------------------------------------------------------------------------------------------------
# Separators, decimal commas, currency, units, percent

add("numbers_units", [
    ("1000000", "\\boxed{1\\!000\\!000}", True, None),
    ("12345", "\\boxed{12{,}345}", True, None),
    ("1234567", "\\boxed{1\\,234\\,567}", True, None),
    ("1234567", "\\boxed{1\u2009234\u2009567}", True, None),
    ("1234567", "\\boxed{1\u202f234\u202f567}", True, None),
    ("1234567", "\\boxed{1,234,567}", True, None),
    ("1234567", "\\boxed{1,234,568}", False, None),
    ("3.5", "\\boxed{3{,}5}", True, None),
    ("2.75", "\\boxed{2,75}", True, None),
    ("1.5", "\\boxed{1,500}", False, None),
    ("2.75", "\\boxed{2, 75}", False, None),
    ("18", "\\boxed{\\$18}", True, None),
    ("18", "\\boxed{\u20ac18}", True, None),
    ("18", "\\boxed{18\u20ac}", True, None),
    ("18", HEAD + "The answer is 18 \u20ac.", True, None),
    ("18", "\\boxed{\u00a318}", True, None),
    ("18", "\\boxed{19 \u20ac}", False, None),
    ("12.5", "\\boxed{\\$12.50}", True, None),
    ("5", "\\boxed{5 m\u00b2}", True, None),
    ("5", "\\boxed{5 \\text{ m}^2}", True, None),
    ("20", "\\boxed{20 cm}", True, None),
    ("20", "\\boxed{20cm}", True, None),
    ("20", "\\boxed{20 \\mathrm{cm}}", True, None),
    ("20", "\\boxed{21 \\mathrm{cm}}", False, None),
    ("25\\%", "\\boxed{25%}", True, None),
    ("25", "\\boxed{25 \\%}", True, None),
    ("25", HEAD + "The answer is 25 percent.", True, None),
    ("25\\%", "\\boxed{25\\,\\%}", True, None),
    ("25\\%", "\\boxed{26\\%}", False, None),
    ("25\\%", "\\boxed{0.25}", False, None),
    ("40", "\\boxed{40^\\circ}", True, None),
    ("40", "\\boxed{40\u00b0}", True, None),
    ("\\frac{41}{333}", "\\boxed{0.\\overline{123}}", True, None),
    ("\\frac{1}{3}", "\\boxed{0.\\overline{4}}", False, None),
    ("500", "\\boxed{\u20b9500}", True, None),
    ("5", "\\boxed{5 USD}", True, None),
    ("1.22", "\\boxed{1,22}", True, None),  # a decimal comma
    ("0.111", "\\boxed{0,111}", True, None),  # no thousands group opens with 0
    ("111", "\\boxed{0,111}", False, None),
    ("2.74", "Le total est donc de 2,74 $ au final.", True, None),
    ("274", "Le total est donc de 2,74 $ au final.", False, None),
    ("1000.99", HEAD + "It is not 10: it is 1,000.99\u20ac in the end.", True, None),
    ("1000.99", HEAD + "The floor is not 10 but 1,000.99m\u00b2 in area.", True, None),
    ("1000.99", HEAD + "The answer is 1,000.99m\u00b2.", True, None),
    ("1000.98", HEAD + "The answer is 1,000.99m\u00b2.", False, None),
    ("28\\%", "\\boxed{28 pct}", True, None),
    ("28\\%", "\\boxed{28 percentage}", True, None),
    ("28\\%", HEAD + "The loss is 28 pct.", True, None),
    ("28\\%", "\\boxed{0.28}", False, None),
    ("1,22", HEAD + "The answer is 1.22.", True, None),  # a gold with a decimal comma
    ("1,5", HEAD + "The answer is 1.5.", False, None),  # a gold "1,5" is two roots
    ("-3", "\\boxed{-3,0}", False, None),  # two roots, not the decimal -3.0
    ("-3", HEAD + "So the roots are -3,0", False, None),
    ("-3,0", "\\boxed{-3}", False, None),
    (["-3,0"], "\\boxed{-3}", False, "olympiadbench"),
    ("0,111", "\\boxed{0.111}", True, None),
    ("0,111", "\\boxed{0.112}", False, None),
    ("1000", "1 000", True, None),  # a bare answer with spaced thousands
    ("3100", HEAD + "He bought 3 100-pound bags.", False, None),  # spaced digits in prose stay apart
    ("40/9", "4 4/9", True, None),  # a mixed number
    ("40/9", HEAD + "The answer is 4 4/9.", True, None),
    ("4", HEAD + "The answer is 4 4/9.", False, None),
    ("103/9", "11.0 4/9", False, None),
    ("71/6", "11\n5/6", False, None),  # a line break is no mixed number
    ("40/9", "4 + 4/9", True, None),  # a bare arithmetic expression
    ("2", "4 4/9 2", True, None),
    ("10/9", "\\frac{10}{9}", True, None),  # a bare fraction
    ("1, 2, 3", "$1, 2, 3, ...$", False, None),  # the list goes on
    ("1, 2, 3, \\ldots", "$1, 2, 3, ...$", True, None),
])

# ---------------------------------------------------------------------------------------------------
# Choice letters

add("choices", [
    ("C", "\\boxed{\\text{(C)}}", True, None),
    ("C", "\\boxed{(C)}", True, None),
    ("C", "\\boxed{\\textbf{(C)}}", True, None),
    ("C", "\\boxed{\\mathrm{C}}", True, None),
    ("C", "\\boxed{C}", True, None),
    ("(C)", "\\boxed{C}", True, None),
    ("\\text{(B)}", "\\boxed{B}", True, None),
    ("C", "\\boxed{\\text{C}}", True, None),
    ("C", "\\boxed{\\textbf{(C) } 12}", True, None),
    ("C", "\\boxed{(C)\\ \\frac{1}{2}}", True, None),
    ("C", HEAD + "The correct option is **(C)**.", True, None),
    ("C", HEAD + "The answer is (C).", True, None),
    ("C", HEAD + "Answer: C", True, None),
    ("A", "\\boxed{[A]}", True, None),
    ("B", HEAD + "Answer: (B) 12", True, None),
    ("B", HEAD + "The correct choice is B.", True, None),
    ("B", HEAD + "Hence option B is correct.", True, None),
    ("\\text{B}", HEAD + "The correct choice is (B) $\\frac{1}{2}$.", True, None),
    ("A", HEAD + "Hence option B is correct.", False, None),
    ("C", "\\boxed{D}", False, None),
    ("B", HEAD + "The answer is (C).", False, None),
    ("C", "\\boxed{\\text{(D)}}", False, None),
])

# ---------------------------------------------------------------------------------------------------
# Never a wrong answer graded right

add("no_false_positives", [
    ("52_8", "\\boxed{52_7}", False, None),
    ("52_8", "\\boxed{52_{8}}", True, None),
    ("52_8", "\\boxed{52}", True, None),
    ("52_8", "\\boxed{42}", False, None),
    ("10001_2", "\\boxed{10001_{2}}", True, None),
    ("10001_2", "\\boxed{17}", False, None),
    ("10001_2", "\\boxed{10011_2}", False, None),
    ("(6,31,-1)", "\\boxed{[6,31,-1)}", False, None),
    ("[6,31,-1)", "\\boxed{(6,31,-1)}", False, None),
    ("(1,2)", "\\boxed{\\{1,2\\}}", False, None),
    ("(1,2)", "\\boxed{[1,2]}", False, None),
    ("[1,2]", "\\boxed{1, 2}", False, None),
    ("\\frac{1}{3}", "\\boxed{0.334}", False, None),
    ("0.33", "\\boxed{\\frac{1}{3}}", False, None),  # an exact answer does not match a rounded gold
    ("\\frac{1}{2004!}", "\\boxed{\\frac{1}{2006!}}", False, None),
    ("50\\%", "\\boxed{0.5}", False, None),
    ("2", "\\boxed{x^2}", False, None),
    ("5", "\\boxed{5x}", False, None),
    ("12", "\\boxed{120}", False, None),
    ("1.5", "\\boxed{15}", False, None),
    ("4", HEAD + "\\boxed{7} or \\boxed{4}", False, None),
    ("30^\\circ", "\\boxed{\\frac{\\pi}{6}}", False, None),
    ("1e-10", "\\boxed{2e-10}", False, None),
    ("-2,-2", "\\boxed{-2}", False, None),
    ("(1, 2]", "\\boxed{(1, 2)}", False, None),
    ("x = 5", HEAD + "The answer is x = 6.", False, None),
    ("\\sqrt{2}", "\\boxed{1.42}", False, None),
    ("1.41", "\\boxed{1.414}", False, None),  # a decimal gold is not rounded: it is the answer
    ("3", HEAD + "so the answer is $3+1$", False, None),
    ("a_{12}", "\\boxed{10}", False, None),
])

# ---------------------------------------------------------------------------------------------------
# "#### N" wherever a line's answer can stand (step-by-step chat outputs)

STEPS = "Step 1: Janet's ducks lay 16 eggs and she eats 3 and bakes with 4.\nStep 2: She sells 16 - 3 - 4 = 9 eggs at $2 each.\n"
add("gsm8k_lines", [
    ("18", STEPS + "Step 3: #### 18", True, "gsm8k"),
    ("18", STEPS + "Step 3: #### 17", False, "gsm8k"),
    ("18", STEPS + "Step 3: 9 * 2 = 18 dollars. #### 18", True, "gsm8k"),
    ("18", STEPS + "Step 3: 9 * 2 = 18 dollars. #### 18.", True, None),
    ("18", STEPS + "Step 3: #### 18\nStep 4: #### 18\nStep 5: #### 18", True, "gsm8k"),
    ("18", STEPS + "Step 3: #### 18 Step 4: She also sells 3 more, 21 in all", True, "gsm8k"),
    ("18", STEPS + "Step 3: #### $18", True, "gsm8k"),
    ("18", STEPS + "Step 3: **#### 18**", True, "gsm8k"),
    ("14", "#### Step 1: Count the apples\nShe has 3 + 4 = 7 apples.\n#### Step 2: Double it\n7 * 2 = 14", True, "gsm8k"),
    ("2", "#### Step 1: Count the apples\nShe has 3 + 4 = 7 apples.\n#### Step 2: Double it\n7 * 2 = 14", False, "gsm8k"),
    ("26", "Step 1: 5 + 21 = 26\nStep 2: #### 26<|im_end|>", True, "gsm8k"),
    ("26", "Step 1: 5 + 21 = 26\nStep 2: #### 25<|im_end|>\n<|im_start|>user\n#### 26", False, "gsm8k"),
])

# ---------------------------------------------------------------------------------------------------
# No box and no answer line: the last sentence's number outranks an earlier math span (numeric golds)

add("last_sentence", [
    ("200", "The reach is 1000 feet and the throw 1200 feet.\n\\[ d = 1000 - 1200 \\]\n\\[ d = -200 \\]\nSo the dragon can still hit the dragon 200 feet outside of the reach.", True, "gsm8k"),
    ("-200", "The reach is 1000 feet and the throw 1200 feet.\n\\[ d = -200 \\]\nSo Polly can stand 200 feet outside of the reach.", False, "gsm8k"),
    ("23", "Step 1: He starts with 25 marbles.\nStep 2: He loses 2: \\( 25 - 2 = 23 \\)\nStep 3: He then buys 4 more, so he has 27.\nStep 4: He then buys 4 more, so he has 27.\nStep 5: He then buys 4 more, so he has", False, "gsm8k"),
    ("27", "Step 1: He starts with 25 marbles.\nStep 2: He loses 2: \\( 25 - 2 = 23 \\)\nStep 3: He then buys 4 more, so he has 27.\nStep 4: He then buys 4 more, so he has 27.\nStep 5:", True, "gsm8k"),
    ("5", HEAD + "Therefore \\[ x = 5 \\] holds in all 3 cases.", True, None),
    ("3", HEAD + "Therefore \\[ x = 5 \\] holds in all 3 cases.", False, None),
    ("x^2+1", HEAD + "The polynomial is $x^2+1$.\nWe checked it in 3 cases.", True, None),
    ("5", HEAD + "Step 3: So $x = 5$.\nStep 4:", True, None),
    ("4", HEAD + "Step 3: So $x = 5$.\nStep 4:", False, None),
    ("12", HEAD + "She sold **12** cakes.\nEach of the 3 boxes holds 4 of them, 12 in all.", True, None),
])

# ---------------------------------------------------------------------------------------------------
# Answer lines in prose (Minerva's "Final Answer:" with a sentence), currency dollars, inline spans

add("prose_answers", [
    ("120", HEAD + "Final Answer: The volume of $ABCDEFGH$ is 120. I hope it is correct.", True, "math"),
    ("8", HEAD + "Final Answer: The volume of $ABCDEFGH$ is 120. I hope it is correct.", False, "math"),
    ("\\frac{3}{4}", HEAD + "Final Answer: The probability that $X > Y$ is $\\frac{3}{4}$. I hope it is correct.", True, "math"),
    ("\\frac{3}{4}", HEAD + "Final Answer: The probability that $X > Y$ is $\\frac{1}{4}$. I hope it is correct.", False, "math"),
    ("5", HEAD + "Answer: 5 is the number of apples left.", True, None),
    ("10455", "He pays $10,200 + $255 = $10,455.\nThe final answer is $10,455$", True, None),
    ("255", "He pays $10,200 + $255 = $10,455.\nThe final answer is $10,455$", False, None),
    ("10455", "The tax is $255, so he pays $10,200 + $255 = $10,455. The final answer is $10,455$", True, None),
    ("10455", "The total is \\$10,200 + \\$255 = \\$10,455. Final Answer: The final answer is $10,455$. I hope it is correct.", True, "math"),
    ("9", "Answer $$ \n 9 \n $$", True, None),
    ("9", "Answer \\[ \n 9 \n \\]", True, None),
    ("9", "Answer $ \n 9 \n $", False, None),  # an inline span holds no line break (math-verify's rule)
    ("9", "Answer \\( \n 9 \n \\)", False, None),
    ("7", "Le prix est 5$.\nIl reste 7$", True, None),
    # A Minerva answer line after the last box is the final word.
    ("10455", "Interest on the first CD is $0.04 \\cdot 10,000 \\cdot \\frac{1}{2} = \\boxed{200}$, so he has $10,200. On the second CD $0.05 \\cdot 10,200 \\cdot \\frac{1}{2} = \\boxed{255}$, so he has $10,200 + $255 = $10,455. Final Answer: The final answer is $10,455$. I hope it is correct.", True, "math"),
    ("255", "Interest on the first CD is $0.04 \\cdot 10,000 \\cdot \\frac{1}{2} = \\boxed{200}$, so he has $10,200. On the second CD $0.05 \\cdot 10,200 \\cdot \\frac{1}{2} = \\boxed{255}$, so he has $10,200 + $255 = $10,455. Final Answer: The final answer is $10,455$. I hope it is correct.", False, "math"),
    ("5", HEAD + "Final Answer: The final answer is $\\boxed{5}$. I hope it is correct.", True, "math"),
    ("4", HEAD + "Final Answer: The final answer is $3$. I hope it is correct. Re-checking, it is \\boxed{4}.", True, "math"),
    # A sentence may end inside a display span: the next sentence's number is later.
    ("100", HEAD + "Dividing gives $$\\frac{x'}{x} \\geq \\frac{2}{1}.$$ Therefore the error grows by 100%.", True, None),
])

# ---------------------------------------------------------------------------------------------------
# Escaped LaTeX (JSON in JSON) and whole chat transcripts

TRANSCRIPT = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+3? "
    "Put the answer in \\boxed{}.<|im_end|>\n<|im_start|>assistant\n2 + 3 = 5, so the answer is \\boxed{ANSWER}."
    "<|im_end|>\n<|im_start|>user\nAnd 3+3? The answer is \\boxed{6}"
)
add("escaped_and_chat", [
    ("\\frac{1}{2}", HEAD + "So the answer is \\\\boxed{\\\\frac{1}{2}}.", True, None),
    ("\\frac{1}{2}", HEAD + "So the answer is \\\\boxed{\\\\frac{1}{3}}.", False, None),
    ("\\frac{\\sqrt{2}}{2}", "We get $\\\\sqrt{2}$ first.\\nThe answer is $\\\\frac{1}{\\\\sqrt{2}}$.", True, None),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\\\boxed{\\\\begin{pmatrix} 1 \\\\\\\\ 2 \\\\end{pmatrix}}", True, None),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\\\boxed{\\\\begin{pmatrix} 2 \\\\\\\\ 1 \\\\end{pmatrix}}", False, None),
    ("\\\\frac{10}{2}", "\\boxed{5}", True, None),  # an escaped gold
    ("5", TRANSCRIPT.replace("ANSWER", "5"), True, None),  # the answer of the last assistant turn
    ("6", TRANSCRIPT.replace("ANSWER", "5"), False, None),  # not the next user turn's
    ("5", HEAD + "The answer is \\boxed{5}.<|im_start|>user", True, None),
    ("5", HEAD + "The answer is $5$.\n<|im_start|>user\nNow 3+3. The answer is $6$.", True, None),
])

CASES: list[Case] = [Case(*row) for row in _CASES]
