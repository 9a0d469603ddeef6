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
  and 105 more in 35 languages by a second writer who had not seen the packs; expected low;
- an answer asked for in a few sentences or one paragraph, in nine languages, and in 25 more (one
  ask each); expected low;
- pasted tables of numbers (generated with a fixed seed): ten simple asks over 24-60 values
  (expected low) and ten statistical or optimisation asks over 30-80 values (expected high);
- hard tasks with a simple-sounding sub-instruction: the held-out rows of ``datasets/`` labelled for
  the high tier in ten languages, as written and with one of :data:`SUB_INSTRUCTIONS` added ("Keep
  the explanation brief.", "Then explain it to a child."), which asks for less about one part of
  the answer, not for an easier task; expected high. These sub-instructions are in no training file;
- substantial work asked for in plain words (a plain-language rewrite of a long clause that keeps
  every obligation, a beginners' course with exercises, a loan comparison to compute for a
  layperson): 36 tasks in 35 languages by a third writer who had not seen the packs or the training
  data, with the tier that writer expected (medium or high), from ``probe_data/``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

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

# Written by a second writer, who had not seen the packs, in 35 languages.
SIMPLE_EXPLANATION_SECOND_WRITER = [
    "Spiegami come funziona la blockchain come se avessi 5 anni",
    "mia figlia di 8 anni mi ha chiesto perché il cielo è blu e non sapevo cosa risponderle... me lo spieghi in parole semplici?",
    "Potresti spiegarmi cos'è l'inflazione in modo che anche mia nonna lo capisca? Senza paroloni per favore",
    "Объясни как пятилетнему, что такое квантовая запутанность",
    "Сын спросил меня, откуда берутся деньги и почему нельзя просто напечатать больше. Помогите объяснить простыми словами, ему 9 лет",
    "можешь объяснить на пальцах как работает иммунитет? без сложных терминов, я вообще не биолог",
    "Поясни простими словами, що таке штучний інтелект, так щоб зрозуміла моя бабуся",
    "Донька (7 років) питає, чому Місяць іноді видно вдень. Як їй це пояснити по-дитячому?",
    "Будь ласка, розтлумач мені без жаргону, що таке іпотека і як нараховуються відсотки. Я повний профан у фінансах",
    "Wytłumacz mi jak pięciolatkowi, czym jest czarna dziura",
    "Czy możesz mi wyjaśnić prostym językiem, o co chodzi z tymi stopami procentowymi? Jak to wpływa na mój kredyt? Tylko bez fachowych słówek proszę",
    "moja córka pyta mnie co to jest DNA a ja nie wiem jak jej to powiedzieć zeby zrozumiała, ma 10 lat",
    "Vysvětli mi jako pětiletému dítěti, jak funguje internet",
    "Můžete mi prosím jednoduše vysvětlit, co je to fotosyntéza? Potřebuju to vysvětlit synovi do školy a sám tomu moc nerozumím",
    "vysvetli mi lidsky co je to dedicke rizeni, at tomu rozumi i babicka",
    "Kun je me uitleggen wat existentialisme is alsof ik vijf ben?",
    "Mijn zoontje van 6 vroeg waarom we niet kunnen ademen onder water. Hoe leg ik dat simpel uit?",
    "Leg in jip-en-janneketaal uit hoe een kerncentrale stroom maakt",
    "Förklara relativitetsteorin som om jag vore fem år",
    "Kan du förklara på ett enkelt sätt vad en aktie är? Min dotter på 11 frågade och jag fick inte ihop ett bra svar",
    "förklara på lättsvenska hur vaccin funkar, utan krångliga ord tack",
    "Forklar mig lige som om jeg var fem, hvad en algoritme er",
    "Kan du forklare klimaforandringer i et helt enkelt sprog, så min søn på 8 kan forstå det?",
    "Hvad er forskellen på en aktie og en obligation? Forklar det uden fagudtryk, jeg er helt blank",
    "Forklar meg som om jeg er fem år: hva er egentlig strøm?",
    "Kan du forklare hva kvantedatamaskiner er på en enkel måte? Jeg er helt lekmann",
    "Barnebarnet mitt spurte hvorfor vi har årstider, og jeg husket ikke helt. Kan du forklare det enkelt så jeg kan fortelle det videre til en 7-åring?",
    "Selitä mulle kuin viisivuotiaalle, miten inflaatio toimii",
    "Voisitko selittää selkokielellä, mitä tekoäly oikeastaan on? Ilman mitään teknistä jargonia",
    "Tyttäreni kysyi miksi lehdet muuttuu syksyllä keltaiseksi. Miten sen voi selittää lapselle yksinkertaisesti?",
    "Magyarázd el úgy, mintha ötéves lennék, mi az a fekete lyuk",
    "El tudnád magyarázni egyszerűen, hogy mi az az infláció? Úgy, hogy a nagymamám is megértse",
    "a fiam kérdezte hogy miért esik az eső, hogy magyarázzam el neki érthetően? 6 éves",
    "Explică-mi ca unui copil de 5 ani ce este criptomoneda",
    "Poți să-mi explici pe înțelesul tuturor cum funcționează sistemul imunitar? Fără termeni medicali complicați, te rog",
    "fiica mea m-a intrebat de ce pluteste gheata pe apa si nu stiu sa ii explic, are 8 ani. ma ajuti cu o explicatie simpla?",
    "Bana 5 yaşındaymışım gibi kuantum fiziğini anlat",
    "Faiz nedir, enflasyonla ilişkisi ne? Basit bir dille anlatır mısın, ekonomiden hiç anlamıyorum",
    "oğlum sordu dinozorlar neden yok oldu diye, 6 yaşında, çocuğun anlayacağı şekilde nasıl anlatırım",
    "Εξήγησέ μου σαν να είμαι πέντε χρονών τι είναι το blockchain",
    "Μπορείς να μου εξηγήσεις με απλά λόγια πώς λειτουργεί η βαρύτητα; Ο γιος μου ρώτησε και δεν ήξερα τι να πω",
    "Τι είναι ο πληθωρισμός; Πες το μου απλά, χωρίς οικονομικούς όρους, να το καταλάβει και η γιαγιά μου",
    "Jelasin ke aku kayak aku anak umur 5 tahun dong, apa itu inflasi",
    "Bisa tolong jelaskan dengan bahasa yang sederhana bagaimana cara kerja vaksin? Saya orang awam",
    "anak saya nanya kenapa langit warnanya biru, gimana cara jelasinnya biar anak SD ngerti ya?",
    "Terangkan macam saya budak 5 tahun, apa itu lubang hitam",
    "Boleh tak terangkan dalam bahasa mudah apa itu KWSP dan macam mana dividen dikira? Saya tak faham langsung istilah kewangan",
    "Anak saya tanya kenapa bulan berubah bentuk. Macam mana nak terangkan kat dia dengan cara yang senang faham? Dia darjah 2",
    "Ipaliwanag mo nga sa akin na parang bata ako, ano ba ang inflation?",
    "Pwede mo bang ipaliwanag sa simpleng salita kung paano gumagana ang internet? Yung maiintindihan ng lola ko",
    "Tinanong ako ng anak ko kung bakit may kidlat tuwing umuulan. Paano ko ba ipapaliwanag sa 7 taong gulang?",
    "Nieleze kama mtoto wa miaka mitano, mfumuko wa bei ni nini?",
    "Tafadhali nieleze kwa lugha rahisi jinsi malaria inavyoambukizwa, bila kutumia maneno magumu ya kitaalamu",
    "Mwanangu ameniuliza kwa nini jua linachomoza mashariki. Nimweleze vipi kwa urahisi? Ana miaka 8",
    "Giải thích cho tôi như thể tôi 5 tuổi: tiền điện tử là gì?",
    "Bạn có thể giải thích bằng ngôn ngữ đơn giản dễ hiểu về lãi suất ngân hàng không? Để bà tôi cũng hiểu được",
    "con mình hỏi sao trời lại có cầu vồng, giải thích sao cho bé 6 tuổi hiểu vậy mn",
    "用五岁小孩能听懂的话解释一下什么是区块链",
    "能不能通俗易懂地讲讲量子纠缠是怎么回事？别用太多专业术语，我是纯外行",
    "女儿问我为什么会有白天和黑夜，她才6岁，我该怎么跟她解释比较简单？",
    "5歳児にもわかるように相対性理論を説明して",
    "専門用語を使わずに、NISAとiDeCoの違いをざっくり教えてもらえますか？投資のことは全くの素人です",
    "小学生の息子に「なんで地震が起きるの？」って聞かれたんだけど、子どもにわかるように簡単に説明するにはどう言えばいい？",
    "다섯 살짜리한테 설명하듯이 인플레이션이 뭔지 알려줘",
    "할머니도 이해할 수 있게 쉽게 설명해주세요. 인공지능은 어떻게 학습하는 건가요?",
    "초등학교 2학년 딸이 바닷물은 왜 짠지 물어보는데 애가 알아듣게 쉽게 설명하려면 어떻게 해야 돼?",
    "اشرح لي كأنني طفل عمره خمس سنوات: ما هي الثقوب السوداء؟",
    "ممكن تشرحلي ببساطة وبدون مصطلحات معقدة كيف يشتغل التضخم الاقتصادي؟",
    "ابني عمره ٧ سنوات سألني ليش نمرض، كيف أشرح له الجراثيم والمناعة بطريقة بسيطة يفهمها؟",
    "תסביר לי כאילו אני בן חמש מה זה ביטקוין",
    "אפשר הסבר בשפה פשוטה, בלי מונחים מקצועיים, על איך עובדת משכנתא צמודת מדד?",
    "הבת שלי בת 8 שאלה למה יש גאות ושפל ולא ידעתי מה לענות. איך מסבירים את זה לילדה בצורה פשוטה?",
    "طوری توضیح بده که انگار پنج سالمه: هوش مصنوعی چیه؟",
    "میشه لطفاً به زبان ساده و بدون اصطلاحات تخصصی توضیح بدید تورم چطور باعث گرون شدن همه چی میشه؟",
    "دخترم ۶ سالشه پرسیده چرا آسمون آبیه، چطوری براش ساده توضیح بدم که بفهمه؟",
    "मुझे ऐसे समझाओ जैसे मैं 5 साल का बच्चा हूँ — GST क्या होता है?",
    "क्या आप आसान भाषा में बता सकते हैं कि शेयर मार्केट कैसे काम करता है? मुझे फाइनेंस की कोई जानकारी नहीं है",
    "मेरी बेटी पूछ रही थी कि बारिश कैसे होती है, उसे सिंपल तरीके से कैसे समझाऊँ? वो 7 साल की है",
    "مجھے ایسے سمجھاؤ جیسے میں پانچ سال کا بچہ ہوں، بلیک ہول کیا ہوتا ہے؟",
    "براہ کرم آسان الفاظ میں بتائیں کہ سود اور منافع میں کیا فرق ہے؟ مشکل اصطلاحات کے بغیر",
    "میرا بیٹا پوچھ رہا تھا کہ ہمیں بخار کیوں ہوتا ہے، اسے آسان طریقے سے کیسے سمجھاؤں؟ وہ چھ سال کا ہے",
    "আমাকে পাঁচ বছরের বাচ্চার মতো করে বোঝাও, ইন্টারনেট কীভাবে কাজ করে?",
    "সহজ ভাষায় একটু বুঝিয়ে বলবেন, মুদ্রাস্ফীতি আসলে কী? আমার দিদিমাও যেন বুঝতে পারেন",
    "আমার মেয়ে জিজ্ঞেস করল গাছ কীভাবে খাবার তৈরি করে। ওর বয়স ৮, কীভাবে সহজ করে বোঝাই?",
    "நான் ஐந்து வயசு குழந்தைன்னு நினைச்சு விளக்குங்க, கருந்துளை (black hole) என்றால் என்ன?",
    "எளிமையான தமிழில் விளக்க முடியுமா, பங்குச் சந்தை எப்படி வேலை செய்கிறது? எனக்கு நிதி பற்றி எதுவும் தெரியாது",
    "என் மகன் ஏன் மழை பெய்கிறது என்று கேட்டான். அவனுக்கு 6 வயது, அவனுக்குப் புரியும்படி எப்படி சொல்வது?",
    "อธิบายให้ฟังแบบเด็ก 5 ขวบเข้าใจหน่อย ว่าคริปโตคืออะไร",
    "ช่วยอธิบายเรื่องภาวะเงินเฟ้อแบบภาษาชาวบ้านได้ไหมคะ ไม่เอาศัพท์ยากๆ นะคะ",
    "ลูกสาวถามว่าทำไมดวงจันทร์ถึงเปลี่ยนรูปร่าง จะอธิบายให้เด็ก 7 ขวบเข้าใจง่ายๆ ยังไงดีครับ",
    "ELI5: how does a mortgage actually work?",
    "Can you explain mRNA vaccines in plain English? Like for a complete layman, no jargon pls",
    "ok dumb it down for me, what's the difference between weather and climate? my 9 yo asked and i totally blanked lol",
    "Explícame como si tuviera cinco años qué es la inflación",
    "¿Me puedes explicar en palabras sencillas cómo funciona la teoría de la evolución? Sin tecnicismos porfa",
    "mi hija de 8 años me pregunto por que hay estaciones del año y no supe que decirle jaja, como se lo explico para que lo entienda?",
    "Explique-moi comme si j'avais 5 ans ce qu'est la théorie des cordes",
    "Pourriez-vous m'expliquer simplement, sans jargon juridique, la différence entre un CDD et un CDI ?",
    "mon fils de 7 ans m'a demandé pourquoi on rêve la nuit, comment lui expliquer ça simplement ?",
    "Erklär mir wie einem Fünfjährigen, was eine Blockchain ist",
    "Kannst du mir bitte in einfachen Worten erklären, wie das mit den Steuerklassen funktioniert? Ich blick da echt nicht durch",
    "Meine Tochter (6) hat gefragt, warum der Mond nicht runterfällt. Wie erkläre ich das kindgerecht?",
    "Me explica como se eu tivesse 5 anos o que é inteligência artificial",
    "Pode explicar-me de forma simples, sem termos técnicos, como funciona o IRS em Portugal?",
    "minha filha de 9 anos perguntou o que é um vulcão e eu não sei explicar direito kkk, como falo pra ela entender?",
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


# Added to hard tasks here only: none of these sentences is in datasets/.
SUB_INSTRUCTIONS = {
    "en": ["Explain the key result in simple terms at the end.", "Keep the explanation brief.",
           "Also add a short, plain-language summary for the board.", "Then explain it to a child."],
    "de": ["Und erkläre am Schluss alles ganz einfach."], "fr": ["Et résume simplement à la fin."],
    "es": ["Y al final, resume todo de forma sencilla."], "zh": ["最后请简要说明一下。"], "ja": ["最後に簡単にまとめて。"],
    "ru": ["И в конце объясни всё просто."], "pt": ["E no final, explique de forma bem simples."],
    "ko": ["마지막엔 간단하게 정리해줘."], "it": ["E alla fine spiegalo in modo semplice."],
}


def hard_heldout_tasks() -> list[tuple[str, str]]:
    """(language, task) of the held-out rows of datasets/ in the languages of SUB_INSTRUCTIONS whose
    label maps to the high tier."""
    from dmr.ml.train import is_heldout, load_examples
    from dmr.tiers import TierMatrix
    from dmr.types import ModelTier

    matrix = TierMatrix()
    return [(e.language, e.task) for e in load_examples(ROOT / "datasets")
            if e.language in SUB_INSTRUCTIONS and is_heldout(e.task)
            and matrix.tier(e.task_type, e.complexity) == ModelTier.HIGH]


def with_sub_instructions(tasks: list[tuple[str, str]]) -> list[str]:
    """Each task with one of its language's sub-instructions added, in turn."""
    seen: Counter = Counter()
    out = []
    for language, task in tasks:
        choices = SUB_INSTRUCTIONS[language]
        sep = "" if language in ("zh", "ja") else " "
        out.append(task.rstrip() + sep + choices[seen[language] % len(choices)])
        seen[language] += 1
    return out


def plain_but_not_simple() -> list[tuple[str, str]]:
    from dmr.ml.train import read_rows

    return read_rows(ROOT / "benchmarks" / "probe_data" / "plain_but_not_simple.jsonl",
                     lambda row: (row["expected"], row["task"]))


def probe_sets() -> dict[str, list[tuple[str, str]]]:
    hard = hard_heldout_tasks()
    return {
        "heavy topic asked simply, English": [("low", f.format(t)) for t in TOPICS for f in FORMS],
        "heavy topic asked simply, 30 languages": [("low", t) for t in SIMPLE_EXPLANATION_30_LANGUAGES],
        "the same, worded otherwise": [("low", t) for t in SIMPLE_EXPLANATION_OTHER_WORDING],
        "the same, by a second writer, 35 languages": [("low", t) for t in SIMPLE_EXPLANATION_SECOND_WRITER],
        "answer in a few sentences, 9 languages": [("low", t) for t in SENTENCE_COUNT],
        "the same, 25 more languages": [("low", t) for t in SENTENCE_COUNT_MORE],
        "simple ask over a pasted table": [x for x in pasted_tables() if x[0] == "low"],
        "hard ask over a pasted table": [x for x in pasted_tables() if x[0] == "high"],
        "hard held-out tasks, as written": [("high", t) for _, t in hard],
        "the same, a simple-sounding sub-instruction added": [("high", t) for t in with_sub_instructions(hard)],
        "substantial work asked in plain words, third writer": plain_but_not_simple(),
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
    wants = max(len("/".join(r["expected"])) for r in report.values())
    print(f"{'probe set':<{width}} | {'n':>4} | {'expected':<{wants}} | {'low':>4} {'medium':>6} {'high':>4} | at expected")
    print("-" * (width + wants + 42))
    for name, r in report.items():
        print(f"{name:<{width}} | {r['n']:>4} | {'/'.join(r['expected']):<{wants}} | {r['low']:>4} {r['medium']:>6} "
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
