"""How the default Router routes a few kinds of task that once went to the wrong tier, in one table.

    python benchmarks/probes.py [--json] [--show]

Each probe set is a handful of tasks the team wrote to check one way of asking, with the tier a
demanding user would expect; the table prints how many went low, medium and high, and the share at
the expected tier. None of these tasks is in ``datasets/``: they measure whether a change to the
packs or the head generalises beyond the rows it was made with, not what it learnt. ``--show``
prints every task with its tier.

- heavy topics asked for simply, in English: 20 topics, six ways of asking ("to a child", "like
  I'm five", "in simple terms", "ELI5", "to a 10 year old", "a one-paragraph, beginner-friendly
  explanation"); expected low;
- the same in 30 other languages, four asks each, and 30 more worded otherwise (one a language);
  expected low;
- an answer asked for in a few sentences or one paragraph, in nine languages, and in 25 more (one
  ask each); expected low;
- pasted tables of numbers (generated with a fixed seed): ten simple asks over 24-60 values
  (expected low) and ten statistical or optimisation asks over 30-80 values (expected high).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter

TIERS = ("low", "medium", "high")
TOPICS = ["the theory of relativity", "quantum entanglement", "string theory", "general relativity", "black holes",
          "the Higgs boson", "CRISPR gene editing", "inflation in economics", "how the internet works",
          "machine learning", "blockchain", "the stock market", "climate change", "evolution by natural selection",
          "the immune system", "nuclear fission", "dark matter", "neural networks", "the Fourier transform",
          "game theory"]
FORMS = ["Explain {} to a child.", "Explain {} like I'm five.", "Can you explain {} in simple terms?", "ELI5 {}",
         "Explain {} to a 10 year old.", "Give me a one-paragraph, beginner-friendly explanation of {}."]

SIMPLE_EXPLANATION_30_LANGUAGES = [
    "Spiega la teoria della relatività a un bambino.",
    "Spiegami i buchi neri come se avessi cinque anni.",
    "Puoi spiegare l'inflazione in parole semplici?",
    "Spiega la selezione naturale a un bambino di 10 anni.",
    "Объясни теорию относительности ребёнку.",
    "Объясни чёрные дыры, как будто мне пять лет.",
    "Можешь объяснить инфляцию простыми словами?",
    "Объясни естественный отбор десятилетнему ребёнку.",
    "Поясни теорію відносності дитині.",
    "Поясни чорні діри, ніби мені п'ять років.",
    "Чи можеш пояснити інфляцію простими словами?",
    "Поясни природний добір десятирічній дитині.",
    "Wyjaśnij teorię względności dziecku.",
    "Wytłumacz czarne dziury, jakbym miał pięć lat.",
    "Czy możesz wyjaśnić inflację prostymi słowami?",
    "Wyjaśnij dobór naturalny dziesięciolatkowi.",
    "Vysvětli teorii relativity dítěti.",
    "Vysvětli černé díry, jako by mi bylo pět let.",
    "Můžeš vysvětlit inflaci jednoduchými slovy?",
    "Vysvětli přirozený výběr desetiletému dítěti.",
    "Leg de relativiteitstheorie uit aan een kind.",
    "Leg zwarte gaten uit alsof ik vijf ben.",
    "Kun je inflatie in eenvoudige woorden uitleggen?",
    "Leg natuurlijke selectie uit aan een kind van 10 jaar.",
    "Förklara relativitetsteorin för ett barn.",
    "Förklara svarta hål som om jag vore fem år.",
    "Kan du förklara inflation med enkla ord?",
    "Förklara naturligt urval för en tioåring.",
    "Forklar relativitetsteorien for et barn.",
    "Forklar sorte huller, som om jeg var fem år.",
    "Kan du forklare inflation med enkle ord?",
    "Forklar naturlig selektion for en tiårig.",
    "Forklar relativitetsteorien for et barn.",
    "Forklar sorte hull som om jeg var fem år.",
    "Kan du forklare inflasjon med enkle ord?",
    "Forklar naturlig utvalg for en tiåring.",
    "Selitä suhteellisuusteoria lapselle.",
    "Selitä mustat aukot kuin olisin viisivuotias.",
    "Voitko selittää inflaation yksinkertaisin sanoin?",
    "Selitä luonnonvalinta kymmenvuotiaalle.",
    "Magyarázd el a relativitáselméletet egy gyereknek.",
    "Magyarázd el a fekete lyukakat, mintha ötéves lennék.",
    "El tudnád magyarázni az inflációt egyszerű szavakkal?",
    "Magyarázd el a természetes szelekciót egy tízévesnek.",
    "Explică teoria relativității unui copil.",
    "Explică-mi găurile negre ca și cum aș avea cinci ani.",
    "Poți explica inflația în cuvinte simple?",
    "Explică selecția naturală unui copil de 10 ani.",
    "Görelilik teorisini bir çocuğa açıkla.",
    "Kara delikleri beş yaşındaymışım gibi anlat.",
    "Enflasyonu basit bir dille açıklar mısın?",
    "Doğal seçilimi 10 yaşındaki bir çocuğa anlat.",
    "Εξήγησε τη θεωρία της σχετικότητας σε ένα παιδί.",
    "Εξήγησέ μου τις μαύρες τρύπες σαν να ήμουν πέντε χρονών.",
    "Μπορείς να εξηγήσεις τον πληθωρισμό με απλά λόγια;",
    "Εξήγησε τη φυσική επιλογή σε ένα δεκάχρονο παιδί.",
    "Jelaskan teori relativitas kepada anak kecil.",
    "Jelaskan lubang hitam seolah-olah saya berumur lima tahun.",
    "Bisakah kamu menjelaskan inflasi dengan bahasa sederhana?",
    "Jelaskan seleksi alam kepada anak berusia 10 tahun.",
    "Terangkan teori kerelatifan kepada kanak-kanak.",
    "Terangkan lubang hitam seolah-olah saya berumur lima tahun.",
    "Boleh terangkan inflasi dalam bahasa yang mudah?",
    "Terangkan pemilihan semula jadi kepada budak berumur 10 tahun.",
    "Ipaliwanag ang teorya ng relativity sa isang bata.",
    "Ipaliwanag ang black holes na parang limang taong gulang ako.",
    "Maaari mo bang ipaliwanag ang implasyon sa simpleng salita?",
    "Ipaliwanag ang natural selection sa isang 10 taong gulang na bata.",
    "Eleza nadharia ya uhusiano kwa mtoto.",
    "Nieleze mashimo meusi kana kwamba nina miaka mitano.",
    "Unaweza kueleza mfumuko wa bei kwa maneno rahisi?",
    "Eleza uteuzi asilia kwa mtoto wa miaka 10.",
    "Giải thích thuyết tương đối cho một đứa trẻ.",
    "Giải thích lỗ đen như thể tôi năm tuổi.",
    "Bạn có thể giải thích lạm phát bằng ngôn ngữ đơn giản không?",
    "Giải thích chọn lọc tự nhiên cho đứa trẻ 10 tuổi.",
    "给小孩解释一下相对论。",
    "像对五岁小孩一样解释黑洞。",
    "你能用简单的话解释通货膨胀吗？",
    "向十岁的孩子解释自然选择。",
    "相対性理論を子供に説明して。",
    "ブラックホールを5歳児にもわかるように説明して。",
    "インフレを簡単な言葉で説明してくれますか？",
    "自然選択を10歳の子どもに説明して。",
    "상대성 이론을 아이에게 설명해 줘.",
    "블랙홀을 다섯 살 아이에게 말하듯이 설명해 줘.",
    "인플레이션을 쉬운 말로 설명해 줄 수 있어?",
    "자연 선택을 10살 어린이에게 설명해 줘.",
    "اشرح نظرية النسبية لطفل.",
    "اشرح الثقوب السوداء كأنني في الخامسة من عمري.",
    "هل يمكنك شرح التضخم بكلمات بسيطة؟",
    "اشرح الانتقاء الطبيعي لطفل في العاشرة.",
    "הסבר את תורת היחסות לילד.",
    "הסבר לי חורים שחורים כאילו אני בן חמש.",
    "אתה יכול להסביר אינפלציה במילים פשוטות?",
    "הסבר ברירה טבעית לילד בן 10.",
    "نظریه نسبیت را برای یک کودک توضیح بده.",
    "سیاه‌چاله‌ها را طوری توضیح بده که انگار پنج سالم است.",
    "می‌توانی تورم را به زبان ساده توضیح بدهی؟",
    "انتخاب طبیعی را برای یک بچه ۱۰ ساله توضیح بده.",
    "सापेक्षता के सिद्धांत को एक बच्चे को समझाओ।",
    "ब्लैक होल को ऐसे समझाओ जैसे मैं पाँच साल का हूँ।",
    "क्या आप महंगाई को आसान शब्दों में समझा सकते हैं?",
    "प्राकृतिक चयन को 10 साल के बच्चे को समझाओ।",
    "نظریہ اضافیت ایک بچے کو سمجھاؤ۔",
    "بلیک ہول ایسے سمجھاؤ جیسے میں پانچ سال کا ہوں۔",
    "کیا آپ مہنگائی کو آسان الفاظ میں سمجھا سکتے ہیں؟",
    "قدرتی انتخاب کو 10 سال کے بچے کو سمجھاؤ۔",
    "আপেক্ষিকতা তত্ত্ব একটি শিশুকে বুঝিয়ে বলো।",
    "ব্ল্যাক হোল এমনভাবে বোঝাও যেন আমার বয়স পাঁচ বছর।",
    "তুমি কি মুদ্রাস্ফীতি সহজ ভাষায় বোঝাতে পারবে?",
    "প্রাকৃতিক নির্বাচন ১০ বছরের শিশুকে বুঝিয়ে বলো।",
    "சார்பியல் கோட்பாட்டை ஒரு குழந்தைக்கு விளக்கு.",
    "கருந்துளைகளை எனக்கு ஐந்து வயது போல விளக்கு.",
    "பணவீக்கத்தை எளிய வார்த்தைகளில் விளக்க முடியுமா?",
    "இயற்கைத் தேர்வை 10 வயது குழந்தைக்கு விளக்கு.",
    "อธิบายทฤษฎีสัมพัทธภาพให้เด็กฟัง",
    "อธิบายหลุมดำเหมือนฉันอายุห้าขวบ",
    "ช่วยอธิบายเงินเฟ้อด้วยภาษาง่ายๆ ได้ไหม",
    "อธิบายการคัดเลือกโดยธรรมชาติให้เด็กอายุ 10 ขวบฟัง",
]

SIMPLE_EXPLANATION_OTHER_WORDING = [
    "Come funziona la blockchain? Spiegalo come se avessi 5 anni.",
    "Расскажи про квантовые компьютеры простым языком.",
    "Розкажи про квантові комп'ютери простою мовою.",
    "Opowiedz o komputerach kwantowych prostym językiem.",
    "Jak funguje blockchain? Vysvětli to dítěti.",
    "Hoe werkt de blockchain? Leg het uit alsof ik 5 ben.",
    "Hur fungerar kvantdatorer? Förklara det för ett barn.",
    "Hvordan virker kvantecomputere? Forklar det for et barn.",
    "Hvordan fungerer kvantedatamaskiner? Forklar det for et barn.",
    "Miten kvanttitietokone toimii? Kerro selkokielellä.",
    "Hogyan működik a blokklánc? Magyarázd el egy gyereknek.",
    "Cum funcționează calculatoarele cuantice? Explică pe înțelesul unui copil.",
    "Kuantum bilgisayarlar nasıl çalışır? Çocuğa anlatır gibi anlat.",
    "Πώς λειτουργεί το blockchain; Εξήγησέ το σε ένα παιδί.",
    "Bagaimana cara kerja komputer kuantum? Jelaskan kepada anak kecil.",
    "Bagaimana komputer kuantum berfungsi? Terangkan dalam bahasa mudah.",
    "Paano gumagana ang blockchain? Ipaliwanag mo sa isang bata.",
    "Kompyuta za quantum zinafanyaje kazi? Nieleze kwa lugha nyepesi.",
    "Máy tính lượng tử hoạt động thế nào? Giải thích cho đứa trẻ hiểu.",
    "量子计算机是怎么工作的？讲给小朋友听。",
    "量子コンピュータの仕組みを小学生にもわかるように教えて。",
    "양자 컴퓨터가 어떻게 작동하는지 초등학생도 알 수 있게 설명해 줘.",
    "كيف تعمل الحواسيب الكمية؟ اشرحها كأنني طفل.",
    "איך עובד בלוקצ'יין? תסביר לי בפשטות.",
    "بلاک‌چین چطور کار می‌کند؟ برای یک بچه توضیح بده.",
    "क्वांटम कंप्यूटर कैसे काम करता है? एक बच्चे को समझाने की तरह बताओ।",
    "کوانٹم کمپیوٹر کیسے کام کرتا ہے؟ ایک بچے کو سمجھانے کی طرح بتاؤ۔",
    "কোয়ান্টাম কম্পিউটার কীভাবে কাজ করে? বাচ্চাকে বোঝানোর মতো করে বলো।",
    "குவாண்டம் கணினி எப்படி வேலை செய்கிறது? எளிய தமிழில் சொல்லு.",
    "คอมพิวเตอร์ควอนตัมทำงานอย่างไร อธิบายให้เด็กเข้าใจหน่อย",
]

SENTENCE_COUNT = [
    "Summarize the plot of Romeo and Juliet in three sentences.",
    "Explain how vaccines work in two sentences.",
    "Describe the causes of the French Revolution in 3 sentences.",
    "Resume la Revolución francesa en dos frases.",
    "Explica la fotosíntesis en tres oraciones.",
    "Résume la guerre froide en trois phrases.",
    "Explique l'inflation en deux phrases.",
    "Fasse die Handlung von Faust in drei Sätzen zusammen.",
    "Erkläre die Photosynthese in zwei Sätzen.",
    "Resuma a Revolução Industrial em duas frases.",
    "Riassumi la trama dei Promessi sposi in tre frasi.",
    "用三句话总结一下二战的起因。",
    "用两句话解释什么是区块链。",
    "Перескажи сюжет «Войны и мира» в трёх предложениях.",
    "Объясни, что такое инфляция, в двух предложениях.",
    "量子コンピュータとは何か、3文で説明して。",
    "Explain the theory of evolution in one paragraph.",
    "Summarize the causes of World War I in a few sentences.",
]

SENTENCE_COUNT_MORE = [
    "Vat de Franse Revolutie samen in twee zinnen.",
    "Wyjaśnij, czym jest inflacja, w dwóch zdaniach.",
    "Поясни, що таке інфляція, у двох реченнях.",
    "Shrň příčiny první světové války ve třech větách.",
    "Förklara fotosyntesen med två meningar.",
    "Forklar fotosyntese i to sætninger.",
    "Forklar fotosyntese med to setninger.",
    "Selitä inflaatio kahdella lauseella.",
    "Foglald össze a hidegháborút két mondatban.",
    "Explică fotosinteza în două propoziții.",
    "Εξήγησε τον πληθωρισμό σε δύο προτάσεις.",
    "Soğuk Savaş'ı iki cümlede özetle.",
    "لخّص أسباب الحرب العالمية الأولى في جملتين.",
    "הסבר מהי אינפלציה בשני משפטים.",
    "تورم را در دو جمله توضیح بده.",
    "प्रकाश संश्लेषण को दो वाक्यों में समझाओ।",
    "مہنگائی کو دو جملوں میں سمجھاؤ۔",
    "মুদ্রাস্ফীতি দুই বাক্যে ব্যাখ্যা করো।",
    "ஒளிச்சேர்க்கையை இரண்டு வாக்கியங்களில் விளக்கு.",
    "Jelaskan fotosintesis dalam dua kalimat.",
    "Terangkan inflasi dalam dua ayat.",
    "Ipaliwanag ang implasyon sa dalawang pangungusap.",
    "Eleza mfumuko wa bei kwa sentensi mbili.",
    "Tóm tắt Chiến tranh Lạnh trong hai câu.",
    "อธิบายการสังเคราะห์แสงในสองประโยค",
]


def _table(rnd: random.Random, rows: int, cols: int = 3) -> str:
    return "\n".join(",".join(f"{rnd.uniform(1, 500):.1f}" for _ in range(cols)) for _ in range(rows))


def _row(rnd: random.Random, n: int) -> str:
    return " ".join(str(rnd.randint(1, 999)) for _ in range(n))


def pasted_tables() -> list[tuple[str, str]]:
    """(expected tier, task): simple asks, then hard ones, over generated numbers (seed 7)."""
    rnd = random.Random(7)
    return [
        ("low", "Add up these numbers: " + _row(rnd, 40)),
        ("low", "Sort these from smallest to largest:\n" + "\n".join(str(rnd.randint(1, 9999)) for _ in range(30))),
        ("low", "What's the largest value in this list? " + _row(rnd, 50)),
        ("low", "Calcula la media de estos valores:\n" + _table(rnd, 25, 1)),
        ("low", "Convertis ces températures de Fahrenheit en Celsius : " + _row(rnd, 24)),
        ("low", "Format this as a markdown table with headers A, B, C:\n" + _table(rnd, 20)),
        ("low", "Wie viele Zahlen in dieser Liste sind gerade? " + _row(rnd, 36)),
        ("low", "这些数字加起来是多少？\n" + _row(rnd, 30)),
        ("low", "Посчитай, сколько здесь чисел больше 100:\n" + _row(rnd, 40)),
        ("low", "Remove the duplicates from this list: " + _row(rnd, 45)),
        ("high", "Fit a multiple linear regression of the third column on the first two, report coefficients with "
                 "standard errors, test for heteroscedasticity with Breusch-Pagan, and interpret:\n" + _table(rnd, 40)),
        ("high", "Here are 60 daily readings of a sensor. Detect change points with a justified method (CUSUM or "
                 "Bayesian online changepoint detection), estimate the regime means and explain the uncertainty:\n"
         + _table(rnd, 60, 1)),
        ("high", "Realiza un análisis de componentes principales de estos datos (4 variables), explica cuántos "
                 "componentes retener y por qué, e interpreta las cargas:\n" + _table(rnd, 30, 4)),
        ("high", "Voici les ventes mensuelles sur trois ans. Construis un modèle SARIMA, justifie l'ordre avec l'ACF "
                 "et la PACF, et donne des prévisions à 6 mois avec intervalles :\n" + _table(rnd, 36, 1)),
        ("high", "Schätze aus diesen Messwerten die Parameter einer Weibull-Verteilung per Maximum-Likelihood, leite "
                 "die Fisher-Information her und gib Konfidenzintervalle an:\n" + _row(rnd, 50)),
        ("high", "根据下面的数据做一个逻辑回归，写出极大似然估计的推导过程，检验模型拟合优度，并解释每个系数：\n" + _table(rnd, 40)),
        ("high", "Given this distance matrix between 8 warehouses, formulate the vehicle routing problem as a MILP "
                 "with capacity constraints, solve it, and prove the solution is optimal:\n"
         + "\n".join(_row(rnd, 8) for _ in range(8))),
        ("high", "Проведи дисперсионный анализ (двухфакторный ANOVA с взаимодействием) для этих данных, проверь "
                 "предпосылки и сделай вывод:\n" + _table(rnd, 36)),
        ("high", "These are latencies in ms from two versions of our service. Design a statistically sound comparison "
                 "(non-normal, heavy tails), run it, and tell me whether the difference is real and how large:\n"
         + _row(rnd, 40) + "\n" + _row(rnd, 40)),
        ("high", "Use k-means and a Gaussian mixture on these 2-D points, choose the number of clusters with BIC and "
                 "silhouette, and explain which model fits better and why:\n" + _table(rnd, 50, 2)),
    ]


def probe_sets() -> dict[str, list[tuple[str, str]]]:
    return {
        "heavy topic asked simply, English": [("low", f.format(t)) for t in TOPICS for f in FORMS],
        "heavy topic asked simply, 30 languages": [("low", t) for t in SIMPLE_EXPLANATION_30_LANGUAGES],
        "the same, worded otherwise": [("low", t) for t in SIMPLE_EXPLANATION_OTHER_WORDING],
        "answer in a few sentences, 9 languages": [("low", t) for t in SENTENCE_COUNT],
        "the same, 25 more languages": [("low", t) for t in SENTENCE_COUNT_MORE],
        "simple ask over a pasted table": [x for x in pasted_tables() if x[0] == "low"],
        "hard ask over a pasted table": [x for x in pasted_tables() if x[0] == "high"],
    }


def run(router=None) -> dict:
    from dmr import Router

    router = router or Router()
    report = {}
    for name, tasks in probe_sets().items():
        decisions = router.classify_batch([t for _, t in tasks])
        tiers = [str(d.tier) for d in decisions]
        counts = Counter(tiers)
        right = sum(got == want for (want, _), got in zip(tasks, tiers))
        report[name] = {"n": len(tasks), "expected": sorted({w for w, _ in tasks}), **{t: counts[t] for t in TIERS},
                        "at_expected": round(right / len(tasks), 3),
                        "tasks": [{"task": t, "expected": w, "tier": got} for (w, t), got in zip(tasks, tiers)]}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--show", action="store_true", help="also print every task with its tier")
    args = parser.parse_args(argv)
    report = run()
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 0
    width = max(map(len, report))
    print(f"{'probe set':<{width}} | {'n':>4} | expected | {'low':>4} {'medium':>6} {'high':>4} | at expected")
    print("-" * (width + 50))
    for name, r in report.items():
        print(f"{name:<{width}} | {r['n']:>4} | {'/'.join(r['expected']):<8} | {r['low']:>4} {r['medium']:>6} "
              f"{r['high']:>4} | {r['at_expected']:.0%}")
    if args.show:
        for name, r in report.items():
            print(f"\n{name}")
            for t in r["tasks"]:
                flag = " " if t["tier"] == t["expected"] else "!"
                print(f"  {flag} {t['tier']:<6} {t['task'][:100]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
